using static Switchboard.Protocol.Extensions.ZLibNative;

namespace Switchboard.Protocol.Extensions;

/// <summary>
/// The sending half of permessage-deflate (RFC 7692 §7.2.1): compresses one whole message into raw DEFLATE,
/// flushed to a byte boundary, without the trailing <c>00 00 FF FF</c>. Keeps its LZ77 context between messages
/// (context takeover) unless told to reset. Holds native zlib state: dispose it, or return it to
/// <see cref="DeflatePool"/>. Not thread-safe.
/// </summary>
internal sealed unsafe class DeflateCompressor : IDisposable
{
    private readonly ZStreamHandle _handle;

    /// <summary>Creates a compressor.</summary>
    /// <param name="level">zlib level, 1 (fastest) to 9 (smallest).</param>
    /// <param name="windowBits">LZ77 window, 9–15 (zlib cannot produce raw 8-bit windows).</param>
    /// <param name="memLevel">zlib memory level, 1–9 (8 is zlib's default).</param>
    public DeflateCompressor(int level = 6, int windowBits = 15, int memLevel = 8)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(level, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, 9);
        ArgumentOutOfRangeException.ThrowIfLessThan(windowBits, 9);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(windowBits, 15);
        if (!IsAvailable)
        {
            throw new PlatformNotSupportedException("zlib (libz.so.1) is not available on this system.");
        }

        Level = level;
        WindowBits = windowBits;
        _handle = ZStreamHandle.CreateDeflate(level, windowBits, memLevel);
    }

    private ZStream* Native => _handle.IsClosed ? null : _handle.Stream;

    /// <summary>The compression level.</summary>
    public int Level { get; }

    /// <summary>The LZ77 window size in bits.</summary>
    public int WindowBits { get; }

    /// <summary>
    /// Compresses <paramref name="message"/> into <paramref name="destination"/> and returns the compressed length,
    /// or -1 when it does not fit (the context is then reset, so nothing later refers to data the peer never saw;
    /// send the message uncompressed). A destination as long as the message asks "compress only if it saves space".
    /// </summary>
    /// <param name="message">The whole message payload.</param>
    /// <param name="destination">Where the compressed payload goes (the 00 00 FF FF tail is not written).</param>
    /// <param name="resetContext">Reset the LZ77 context afterwards (no context takeover, RFC 7692 §7.1.1).</param>
    public int Compress(ReadOnlySpan<byte> message, Span<byte> destination, bool resetContext)
    {
        ObjectDisposedException.ThrowIf(Native is null, this);
        // Room for the 4-byte sync-flush tail that is removed afterwards (§7.2.1), without writing past destination:
        // small messages deflate into a stack buffer and are copied; large ones go straight into the destination, and
        // the last few bytes (the tail) spill into an 8-byte stack buffer.
        bool small = destination.Length + 8 <= 1024;
        Span<byte> scratch = small ? stackalloc byte[destination.Length + 8] : stackalloc byte[8];
        fixed (byte* input = message)
        fixed (byte* output = destination)
        fixed (byte* extra = scratch)
        {
            Native->NextIn = input;
            Native->AvailIn = (uint)message.Length;
            int written;
            if (small)
            {
                Native->NextOut = extra;
                Native->AvailOut = (uint)scratch.Length;
                int rc = deflate(Native, SyncFlush);
                written = scratch.Length - (int)Native->AvailOut;
                if (rc != Ok || Native->AvailIn != 0 || Native->AvailOut == 0 || written < 4 || written - 4 > destination.Length)
                {
                    return Abandon();
                }

                scratch[..(written - 4)].CopyTo(destination);
            }
            else
            {
                Native->NextOut = output;
                Native->AvailOut = (uint)destination.Length;
                int rc = deflate(Native, SyncFlush);
                int main = destination.Length - (int)Native->AvailOut;
                int spilled = 0;
                if (rc == Ok && Native->AvailOut == 0)
                {
                    Native->NextOut = extra;
                    Native->AvailOut = 8;
                    rc = deflate(Native, SyncFlush);
                    spilled = 8 - (int)Native->AvailOut;
                    if (Native->AvailOut == 0)
                    {
                        return Abandon();
                    }
                }

                written = main + spilled;
                if ((rc != Ok && rc != BufError) || Native->AvailIn != 0 || written < 4 || written - 4 > destination.Length)
                {
                    return Abandon();
                }
            }

            Native->NextIn = null;
            Native->NextOut = null;
            if (resetContext)
            {
                deflateReset(Native);
            }

            return written - 4;
        }
    }

    /// <summary>Resets the LZ77 context: the next message refers to nothing sent before it.</summary>
    public void Reset()
    {
        ObjectDisposedException.ThrowIf(Native is null, this);
        deflateReset(Native);
    }

    private int Abandon()
    {
        Native->NextIn = null;
        Native->NextOut = null;
        deflateReset(Native);
        return -1;
    }

    /// <summary>Frees the native state.</summary>
    public void Dispose() => _handle.Dispose();
}
