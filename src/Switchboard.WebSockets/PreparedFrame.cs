using System.Buffers;
using System.Text;
using Switchboard.Protocol;

namespace Switchboard.WebSockets;

/// <summary>
/// A message encoded once, to be sent to many connections: the frame header and payload live in one
/// immutable buffer, and every server-side connection that sends it writes the very same bytes
/// (client-side connections mask a copy as they write, RFC 6455 §5.3). Thread-safe; reusable forever.
/// </summary>
public sealed class PreparedFrame
{
    internal const int HeaderSpace = FrameHeader.MaxLength;

    internal PreparedFrame(byte[] buffer, int headerStart, int payloadLength, Opcode opcode)
    {
        Buffer = buffer;
        HeaderStart = headerStart;
        PayloadLength = payloadLength;
        Opcode = opcode;
    }

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

    /// <summary>Encodes a message once.</summary>
    public static PreparedFrame Create(MessageType type, ReadOnlySpan<byte> payload)
    {
        byte[] buffer = new byte[HeaderSpace + payload.Length];
        payload.CopyTo(buffer.AsSpan(HeaderSpace));
        return new PreparedFrame(buffer, WriteHeader(buffer, (Opcode)type, payload.Length), payload.Length, (Opcode)type);
    }

    /// <summary>Encodes a text message once.</summary>
    public static PreparedFrame CreateText(string text)
    {
        int n = Encoding.UTF8.GetByteCount(text);
        byte[] buffer = new byte[HeaderSpace + n];
        Encoding.UTF8.GetBytes(text, buffer.AsSpan(HeaderSpace));
        return new PreparedFrame(buffer, WriteHeader(buffer, Opcode.Text, n), n, Opcode.Text);
    }

    /// <summary>Writes the unmasked header right-aligned before the payload; returns where it starts.</summary>
    internal static int WriteHeader(byte[] buffer, Opcode opcode, int payloadLength, bool fin = true)
    {
        int headerLength = FrameHeader.GetEncodedLength(payloadLength, masked: false);
        int start = HeaderSpace - headerLength;
        FrameHeader.Write(buffer.AsSpan(start), fin, 0, opcode, payloadLength, false, 0);
        return start;
    }
}

/// <summary>An entry of a connection's outbound queue: a frame to write, possibly in a pooled buffer.</summary>
internal readonly struct OutboundFrame
{
    public OutboundFrame(byte[] buffer, int headerStart, int payloadLength, Opcode opcode, bool fin, bool pooled)
    {
        Buffer = buffer;
        HeaderStart = headerStart;
        PayloadLength = payloadLength;
        Opcode = opcode;
        Fin = fin;
        Pooled = pooled;
    }

    public byte[] Buffer { get; }
    public int HeaderStart { get; }
    public int PayloadLength { get; }
    public Opcode Opcode { get; }
    public bool Fin { get; }
    public bool Pooled { get; }

    /// <summary>Bytes charged against the queue limit.</summary>
    public int Cost => PayloadLength + PreparedFrame.HeaderSpace;

    public ReadOnlySpan<byte> Payload => Buffer.AsSpan(PreparedFrame.HeaderSpace, PayloadLength);

    public ReadOnlySpan<byte> ServerFrame => Buffer.AsSpan(HeaderStart, PreparedFrame.HeaderSpace - HeaderStart + PayloadLength);

    public static OutboundFrame Rent(Opcode opcode, ReadOnlySpan<byte> payload, bool fin)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(PreparedFrame.HeaderSpace + payload.Length);
        payload.CopyTo(buffer.AsSpan(PreparedFrame.HeaderSpace));
        int start = PreparedFrame.WriteHeader(buffer, opcode, payload.Length, fin);
        return new OutboundFrame(buffer, start, payload.Length, opcode, fin, pooled: true);
    }

    public static OutboundFrame RentText(ReadOnlySpan<char> text)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(PreparedFrame.HeaderSpace + Encoding.UTF8.GetMaxByteCount(text.Length));
        int n = Encoding.UTF8.GetBytes(text, buffer.AsSpan(PreparedFrame.HeaderSpace));
        int start = PreparedFrame.WriteHeader(buffer, Opcode.Text, n);
        return new OutboundFrame(buffer, start, n, Opcode.Text, fin: true, pooled: true);
    }

    public void Release()
    {
        if (Pooled)
        {
            ArrayPool<byte>.Shared.Return(Buffer);
        }
    }
}
