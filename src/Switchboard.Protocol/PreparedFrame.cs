using System.Buffers;
using System.Text;
using Switchboard.Protocol.Extensions;

namespace Switchboard.Protocol;

/// <summary>
/// A message encoded once, to be sent to many connections: the frame header and payload live in one
/// immutable buffer, and every server-side connection that sends it writes the very same bytes
/// (client-side connections mask a copy as they write, RFC 6455 §5.3). Thread-safe; reusable forever.
/// </summary>
public sealed class PreparedFrame
{
    internal const int HeaderSpace = FrameHeader.MaxLength;

    private CompressedVariant[]? _compressed; // copy-on-write: a handful of (level, window) variants at most

    internal PreparedFrame(byte[] buffer, int headerStart, int payloadLength, Opcode opcode, bool compressible = true)
    {
        Buffer = buffer;
        HeaderStart = headerStart;
        PayloadLength = payloadLength;
        Opcode = opcode;
        Compressible = compressible;
    }

    /// <summary>
    /// False when this message must never be compressed (e.g. it carries a secret next to attacker-chosen text,
    /// the CRIME/BREACH pattern). True by default.
    /// </summary>
    public bool Compressible { get; }

    internal byte[] Buffer { get; }
    internal int HeaderStart { get; }
    internal Opcode Opcode { get; }

    /// <summary>The payload length in bytes.</summary>
    public int PayloadLength { get; }

    /// <summary>The message type.</summary>
    public MessageType Type => (MessageType)Opcode;

    /// <summary>The payload.</summary>
    public ReadOnlyMemory<byte> Payload => Buffer.AsMemory(HeaderSpace, PayloadLength);

    /// <summary>The whole unmasked frame as a server sends it.</summary>
    public ReadOnlyMemory<byte> ServerFrame => Buffer.AsMemory(HeaderStart, HeaderSpace - HeaderStart + PayloadLength);

    /// <summary>Encodes a message once. <paramref name="compressible"/> false opts it out of permessage-deflate.</summary>
    public static PreparedFrame Create(MessageType type, ReadOnlySpan<byte> payload, bool compressible = true)
    {
        byte[] buffer = new byte[HeaderSpace + payload.Length];
        payload.CopyTo(buffer.AsSpan(HeaderSpace));
        return new PreparedFrame(buffer, WriteHeader(buffer, (Opcode)type, payload.Length), payload.Length, (Opcode)type, compressible);
    }

    /// <summary>The bytes a payload needs free in front of it in its buffer for <see cref="Wrap"/> to frame it in place.</summary>
    public const int HeaderRoom = HeaderSpace;

    /// <summary>
    /// Frames a payload where it lies, without copying it: <paramref name="buffer"/> holds the payload from offset
    /// <see cref="HeaderRoom"/> to its end, and the header is written into the bytes before it. The frame then owns the
    /// buffer: nothing may change it afterwards (every send reads it). For a producer that can leave room in front of
    /// what it encodes, e.g. a serializer writing straight into a buffer shared by a fan-out.
    /// </summary>
    public static PreparedFrame Wrap(MessageType type, byte[] buffer, bool compressible = true)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        if (buffer.Length < HeaderRoom)
        {
            throw new ArgumentException($"The buffer must start with {HeaderRoom} free bytes before the payload.", nameof(buffer));
        }

        int n = buffer.Length - HeaderRoom;
        return new PreparedFrame(buffer, WriteHeader(buffer, (Opcode)type, n), n, (Opcode)type, compressible);
    }

    /// <summary>Encodes a text message once. <paramref name="compressible"/> false opts it out of permessage-deflate.</summary>
    public static PreparedFrame CreateText(string text, bool compressible = true)
    {
        int n = Encoding.UTF8.GetByteCount(text);
        byte[] buffer = new byte[HeaderSpace + n];
        Encoding.UTF8.GetBytes(text, buffer.AsSpan(HeaderSpace));
        return new PreparedFrame(buffer, WriteHeader(buffer, Opcode.Text, n), n, Opcode.Text, compressible);
    }

    /// <summary>
    /// The compressed frame (RSV1 set, RFC 7692 §6) for connections whose sending side keeps no context, with the given
    /// zlib level and window: built on first use and shared by every such connection. One variant is kept per distinct
    /// (level, window), so a fan-out to members that negotiated different windows compresses once per window, not once
    /// per member. Null when compressing does not make the message smaller (it is then sent as is). Senders racing on
    /// the first use of a variant may both compress; either result is the same bytes.
    /// </summary>
    internal ReadOnlyMemory<byte>? GetCompressedFrame(int level, int windowBits, DeflatePool pool)
    {
        CompressedVariant[]? variants = Volatile.Read(ref _compressed);
        if (variants is not null)
        {
            foreach (CompressedVariant v in variants)
            {
                if (v.Level == level && v.WindowBits == windowBits)
                {
                    return v.Frame is null ? null : v.Frame;
                }
            }
        }

        CompressedVariant made = CompressOnce(level, windowBits, pool);
        while (true)
        {
            CompressedVariant[]? seen = Volatile.Read(ref _compressed);
            CompressedVariant[] next = seen is null ? [made] : [.. seen, made];
            if (Interlocked.CompareExchange(ref _compressed, next, seen) == seen)
            {
                break;
            }
        }

        return made.Frame is null ? null : made.Frame;
    }

    /// <summary>The compressed variants built so far: one per distinct (level, window) it was sent with.</summary>
    internal int CompressedVariantCount => Volatile.Read(ref _compressed)?.Length ?? 0;

    private CompressedVariant CompressOnce(int level, int windowBits, DeflatePool pool)
    {
        DeflateCompressor compressor = pool.RentCompressor(level, windowBits);
        byte[] scratch = ArrayPool<byte>.Shared.Rent(Math.Max(1, PayloadLength));
        try
        {
            int n = compressor.Compress(Payload.Span, scratch.AsSpan(0, Math.Max(0, PayloadLength - 1)), resetContext: true);
            if (n < 0)
            {
                return new CompressedVariant(level, windowBits, null);
            }

            int headerLength = FrameHeader.GetEncodedLength(n, masked: false);
            byte[] frame = new byte[headerLength + n];
            FrameHeader.Write(frame, true, 0x4, Opcode, n, false, 0);
            scratch.AsSpan(0, n).CopyTo(frame.AsSpan(headerLength));
            return new CompressedVariant(level, windowBits, frame);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
            pool.Return(compressor);
        }
    }

    private sealed record CompressedVariant(int Level, int WindowBits, byte[]? Frame);

    /// <summary>Writes the unmasked header right-aligned before the payload; returns where it starts.</summary>
    internal static int WriteHeader(byte[] buffer, Opcode opcode, int payloadLength, bool fin = true)
    {
        int headerLength = FrameHeader.GetEncodedLength(payloadLength, masked: false);
        int start = HeaderSpace - headerLength;
        FrameHeader.Write(buffer.AsSpan(start), fin, 0, opcode, payloadLength, false, 0);
        return start;
    }
}
