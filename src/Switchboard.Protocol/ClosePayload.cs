using System.Buffers.Binary;
using System.Text;

namespace Switchboard.Protocol;

/// <summary>Why a received close frame's payload is invalid (all fail the connection with 1002).</summary>
public enum ClosePayloadError
{
    /// <summary>The payload is valid.</summary>
    None,
    /// <summary>A 1-byte payload: a code needs two bytes (§5.5.1).</summary>
    TooShort,
    /// <summary>A code that may not appear on the wire (§7.4.1, §7.4.2).</summary>
    InvalidCode,
    /// <summary>The reason is not valid UTF-8 (§5.5.1).</summary>
    InvalidReason,
}

/// <summary>Encodes and decodes the body of a close frame (RFC 6455 §5.5.1): an optional 2-byte code and a UTF-8 reason.</summary>
public static class ClosePayload
{
    /// <summary>A control frame payload is at most 125 bytes, so a reason is at most 123 bytes of UTF-8.</summary>
    public const int MaxReasonBytes = 123;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Parses a received close payload. An empty payload yields <see cref="WebSocketCloseCode.NoStatusReceived"/>.
    /// </summary>
    public static ClosePayloadError TryParse(ReadOnlySpan<byte> payload, out ushort code, out string reason)
    {
        reason = string.Empty;
        code = WebSocketCloseCode.NoStatusReceived;
        if (payload.Length == 0)
        {
            return ClosePayloadError.None;
        }

        if (payload.Length == 1)
        {
            return ClosePayloadError.TooShort;
        }

        code = BinaryPrimitives.ReadUInt16BigEndian(payload);
        if (!WebSocketCloseCode.IsValidOnWire(code))
        {
            return ClosePayloadError.InvalidCode;
        }

        var validator = new Utf8Validator();
        ReadOnlySpan<byte> text = payload[2..];
        if (!validator.Append(text) || !validator.IsComplete)
        {
            return ClosePayloadError.InvalidReason;
        }

        reason = Encoding.UTF8.GetString(text);
        return ClosePayloadError.None;
    }

    /// <summary>
    /// Checks a code and reason an application wants to send; throws on misuse
    /// (a reserved code, or a reason longer than 123 UTF-8 bytes).
    /// </summary>
    public static void Validate(ushort code, string? reason)
    {
        if (!WebSocketCloseCode.IsValidOnWire(code))
        {
            throw new ArgumentOutOfRangeException(nameof(code), code, "Close code may not be sent on the wire (RFC 6455 §7.4).");
        }

        if (reason is not null && StrictUtf8.GetByteCount(reason) > MaxReasonBytes)
        {
            throw new ArgumentException($"A close reason may be at most {MaxReasonBytes} UTF-8 bytes (RFC 6455 §5.5).", nameof(reason));
        }
    }

    /// <summary>Writes a close payload; <paramref name="code"/> 1005 writes an empty payload. Returns the length.</summary>
    public static int Write(Span<byte> destination, ushort code, string? reason)
    {
        if (code == WebSocketCloseCode.NoStatusReceived)
        {
            return 0;
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination, code);
        int n = string.IsNullOrEmpty(reason) ? 0 : StrictUtf8.GetBytes(reason, destination[2..]);
        return 2 + n;
    }

    /// <summary>
    /// Shortens a reason to at most 123 UTF-8 bytes without splitting a character, for reasons the
    /// library builds itself.
    /// </summary>
    public static string Truncate(string reason)
    {
        if (Encoding.UTF8.GetByteCount(reason) <= MaxReasonBytes)
        {
            return reason;
        }

        int chars = reason.Length;
        while (chars > 0 && Encoding.UTF8.GetByteCount(reason.AsSpan(0, chars)) > MaxReasonBytes)
        {
            chars--;
            if (chars > 0 && char.IsHighSurrogate(reason[chars - 1]))
            {
                chars--;
            }
        }

        return reason[..chars];
    }
}
