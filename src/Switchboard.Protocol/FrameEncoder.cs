using System.Buffers;

namespace Switchboard.Protocol;

/// <summary>
/// The send side of RFC 6455 framing: writes frames into an <see cref="IBufferWriter{T}"/>.
/// A client masks every frame with a fresh key (§5.3); a server never masks (§5.1).
/// </summary>
public static class FrameEncoder
{
    /// <summary>
    /// Writes one frame: header, then the payload (masked with <paramref name="maskKey"/> when
    /// <paramref name="masked"/>). Large payloads are copied in pieces of whatever size the writer offers.
    /// </summary>
    public static void WriteFrame(IBufferWriter<byte> writer, bool fin, byte rsv, Opcode opcode, ReadOnlySpan<byte> payload, bool masked, uint maskKey)
    {
        Span<byte> head = writer.GetSpan(FrameHeader.MaxLength);
        int n = FrameHeader.Write(head, fin, rsv, opcode, payload.Length, masked, maskKey);
        writer.Advance(n);
        WritePayload(writer, payload, masked, maskKey);
    }

    /// <summary>Copies a payload into the writer, masking it on the way when <paramref name="masked"/>.</summary>
    public static void WritePayload(IBufferWriter<byte> writer, ReadOnlySpan<byte> payload, bool masked, uint maskKey)
    {
        int offset = 0;
        while (!payload.IsEmpty)
        {
            Span<byte> dest = writer.GetSpan(Math.Min(payload.Length, 4096));
            int n = Math.Min(dest.Length, payload.Length);
            payload[..n].CopyTo(dest);
            if (masked)
            {
                offset = Masking.Apply(dest[..n], maskKey, offset);
            }

            writer.Advance(n);
            payload = payload[n..];
        }
    }

    /// <summary>Writes a close frame with <paramref name="code"/> and <paramref name="reason"/> (1005 writes an empty close).</summary>
    public static void WriteClose(IBufferWriter<byte> writer, ushort code, string? reason, bool masked, uint maskKey)
    {
        Span<byte> body = stackalloc byte[125];
        int len = ClosePayload.Write(body, code, reason);
        WriteFrame(writer, true, 0, Opcode.Close, body[..len], masked, maskKey);
    }
}
