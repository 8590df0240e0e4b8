using System.Buffers;
using System.Text;

namespace Switchboard.Protocol;

/// <summary>
/// A frame waiting to be sent: an entry of a connection's outbound queue, turned into bytes by
/// <see cref="WebSocketProtocol.Write"/> when its turn comes. Holds either a pooled buffer (released with
/// <see cref="Release"/>, exactly once) or a <see cref="PreparedFrame"/>'s shared bytes. Pongs are markers: the
/// payload is the protocol's pending answer to a ping, taken when written.
/// </summary>
public readonly struct OutboundFrame
{
    private OutboundFrame(byte[] buffer, int headerStart, int payloadLength, Opcode opcode, bool fin, bool pooled, bool compress = false, PreparedFrame? prepared = null)
    {
        Compress = compress;
        Prepared = prepared;
        Buffer = buffer;
        HeaderStart = headerStart;
        PayloadLength = payloadLength;
        Opcode = opcode;
        Fin = fin;
        Pooled = pooled;
    }

    /// <summary>The frame's opcode.</summary>
    public Opcode Opcode { get; }

    /// <summary>Bytes charged against a queue limit: the payload and the largest header.</summary>
    public int Cost => PayloadLength + PreparedFrame.HeaderSpace;

    /// <summary>A control frame (close, ping, pong).</summary>
    public bool IsControl => Opcode.IsControl();

    internal byte[] Buffer { get; }
    internal int HeaderStart { get; }
    internal int PayloadLength { get; }
    internal bool Fin { get; }
    internal bool Pooled { get; }

    /// <summary>May be sent compressed (a whole message, not opted out).</summary>
    internal bool Compress { get; }

    /// <summary>The prepared frame this entry came from, whose shared compressed variant may be used.</summary>
    internal PreparedFrame? Prepared { get; }

    internal ReadOnlySpan<byte> Payload => Buffer.AsSpan(PreparedFrame.HeaderSpace, PayloadLength);

    internal ReadOnlySpan<byte> ServerFrame => Buffer.AsSpan(HeaderStart, PreparedFrame.HeaderSpace - HeaderStart + PayloadLength);

    /// <summary>A prepared frame: its bytes are shared, nothing is copied or rented.</summary>
    public static OutboundFrame From(PreparedFrame frame) =>
        new(frame.Buffer, frame.HeaderStart, frame.PayloadLength, frame.Opcode, fin: true, pooled: false, frame.Compressible, frame);

    /// <summary>A copy of <paramref name="payload"/> in a pooled buffer.</summary>
    public static OutboundFrame Rent(Opcode opcode, ReadOnlySpan<byte> payload, bool fin = true, bool compress = false)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(PreparedFrame.HeaderSpace + payload.Length);
        payload.CopyTo(buffer.AsSpan(PreparedFrame.HeaderSpace));
        int start = PreparedFrame.WriteHeader(buffer, opcode, payload.Length, fin);
        return new OutboundFrame(buffer, start, payload.Length, opcode, fin, pooled: true, compress);
    }

    /// <summary>A text message encoded as UTF-8 into a pooled buffer.</summary>
    public static OutboundFrame RentText(ReadOnlySpan<char> text, bool compress)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(PreparedFrame.HeaderSpace + Encoding.UTF8.GetMaxByteCount(text.Length));
        int n = Encoding.UTF8.GetBytes(text, buffer.AsSpan(PreparedFrame.HeaderSpace));
        int start = PreparedFrame.WriteHeader(buffer, Opcode.Text, n);
        return new OutboundFrame(buffer, start, n, Opcode.Text, fin: true, pooled: true, compress);
    }

    /// <summary>The place of one pong in the queue; its payload is the protocol's oldest pending ping payload.</summary>
    internal static OutboundFrame PongMarker { get; } = new([], 0, 0, Opcode.Pong, fin: true, pooled: false);

    /// <summary>Returns a pooled buffer. Call once, after the frame was written or dropped.</summary>
    public void Release()
    {
        if (Pooled)
        {
            ArrayPool<byte>.Shared.Return(Buffer);
        }
    }
}
