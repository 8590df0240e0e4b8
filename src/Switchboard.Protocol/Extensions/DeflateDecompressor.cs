using System.Runtime.InteropServices;
using static Switchboard.Protocol.Extensions.ZLibNative;

namespace Switchboard.Protocol.Extensions;

/// <summary>The outcome of one <see cref="DeflateDecompressor.Inflate"/> call.</summary>
internal enum InflateStatus
{
    /// <summary>All input was consumed and the output is complete for now.</summary>
    NeedsInput,
    /// <summary>The destination is full and more output may follow: call again with more room (and the rest of the input).</summary>
    DestinationFull,
    /// <summary>The data is not valid DEFLATE; fail the connection (1007).</summary>
    InvalidData,
}

/// <summary>
/// The receiving half of permessage-deflate (RFC 7692 §7.2.2): inflates a message's payload piece by piece into
/// caller-provided space, so the caller decides how much memory a message may take (a small message that inflates
/// to gigabytes is stopped at the caller's limit, never allocated). Always uses a 32 KiB window, which decodes data
/// compressed with any window the peer chose. Holds native zlib state: dispose it, or return it to
/// <see cref="DeflatePool"/>. Not thread-safe.
/// </summary>
internal sealed unsafe class DeflateDecompressor : IDisposable
{
    private static ReadOnlySpan<byte> Tail => [0x00, 0x00, 0xFF, 0xFF];

    private readonly ZStreamHandle _handle;
    private bool _streamEnded;

    /// <summary>Creates a decompressor.</summary>
    public DeflateDecompressor()
    {
        if (!IsAvailable)
        {
            throw new PlatformNotSupportedException("zlib (libz.so.1) is not available on this system.");
        }

        _handle = ZStreamHandle.CreateInflate();
    }

    private ZStream* Native => _handle.IsClosed ? null : _handle.Stream;

    /// <summary>
    /// Inflates as much of <paramref name="input"/> as fits into <paramref name="destination"/>.
    /// </summary>
    /// <param name="input">Compressed payload bytes, in order.</param>
    /// <param name="destination">Where inflated bytes go.</param>
    /// <param name="consumed">Input bytes used; feed the rest in the next call.</param>
    /// <param name="written">Bytes written to <paramref name="destination"/>.</param>
    public InflateStatus Inflate(ReadOnlySpan<byte> input, Span<byte> destination, out int consumed, out int written)
    {
        ObjectDisposedException.ThrowIf(Native is null, this);
        if (_streamEnded)
        {
            // A final block ended the DEFLATE stream (§7.2.3.3 allows BFINAL); the rest of the message is ignored.
            consumed = input.Length;
            written = 0;
            return InflateStatus.NeedsInput;
        }

        fixed (byte* i = input)
        fixed (byte* o = destination)
        {
            Native->NextIn = i;
            Native->AvailIn = (uint)input.Length;
            Native->NextOut = o;
            Native->AvailOut = (uint)destination.Length;
            int rc = inflate(Native, SyncFlush);
            consumed = input.Length - (int)Native->AvailIn;
            written = destination.Length - (int)Native->AvailOut;
            Native->NextIn = null;
            Native->NextOut = null;
            switch (rc)
            {
                case StreamEnd:
                    _streamEnded = true;
                    consumed = input.Length;
                    return InflateStatus.NeedsInput;
                case Ok or BufError:
                    // Full output space means there may be more to come even if the input is used up.
                    return written == destination.Length && destination.Length > 0 ? InflateStatus.DestinationFull
                        : consumed == input.Length ? InflateStatus.NeedsInput
                        : InflateStatus.DestinationFull;
                default:
                    return InflateStatus.InvalidData;
            }
        }
    }

    /// <summary>
    /// Ends a message: inflates the <c>00 00 FF FF</c> tail the sender removed (§7.2.2). Call until it returns
    /// <see cref="InflateStatus.NeedsInput"/>, giving more room while it returns <see cref="InflateStatus.DestinationFull"/>.
    /// </summary>
    public InflateStatus Finish(Span<byte> destination, ref int tailConsumed, out int written)
    {
        InflateStatus status = Inflate(Tail[tailConsumed..], destination, out int consumed, out written);
        tailConsumed += consumed;
        return status;
    }

    /// <summary>Prepares for the next message. With <paramref name="resetContext"/> the LZ77 window is cleared (no context takeover).</summary>
    public void EndMessage(bool resetContext)
    {
        ObjectDisposedException.ThrowIf(Native is null, this);
        if (resetContext || _streamEnded)
        {
            inflateReset(Native);
            _streamEnded = false;
        }
    }

    /// <summary>Frees the native state.</summary>
    public void Dispose() => _handle.Dispose();
}

/// <summary>Counts live native zlib streams (compressors and decompressors), for metrics and leak tests.</summary>
public static class DeflateStreams
{
    private static long s_live;

    /// <summary>Native zlib streams currently allocated in this process (pooled ones included).</summary>
    public static long Live => Interlocked.Read(ref s_live);

    /// <summary>True when permessage-deflate can be used here (the system zlib was found).</summary>
    public static bool IsSupported => ZLibNative.IsAvailable;

    internal static void Opened() => Interlocked.Increment(ref s_live);

    internal static void Closed() => Interlocked.Decrement(ref s_live);
}
