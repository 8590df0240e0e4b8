namespace Switchboard.Protocol;

/// <summary>
/// The rule a peer broke, as reported by <see cref="FrameDecoder"/> and <see cref="WebSocketProtocol"/>: each
/// fails the connection (RFC 6455 §7.1.7) with the close code <see cref="FrameViolations.CloseCode"/> gives.
/// </summary>
public enum FrameViolation : byte
{
    /// <summary>No violation.</summary>
    None,
    /// <summary>A 64-bit payload length with the most significant bit set (§5.2): 1002.</summary>
    InvalidPayloadLength,
    /// <summary>RSV bits set that no negotiated extension defines (§5.2): 1002.</summary>
    ReservedBits,
    /// <summary>A reserved opcode, 3–7 or 11–15 (§5.2): 1002.</summary>
    ReservedOpcode,
    /// <summary>An unmasked frame from a client (§5.1): 1002.</summary>
    UnmaskedClientFrame,
    /// <summary>A masked frame from a server (§5.1): 1002.</summary>
    MaskedServerFrame,
    /// <summary>A control frame without FIN (§5.5): 1002.</summary>
    FragmentedControlFrame,
    /// <summary>A control frame with more than 125 bytes of payload (§5.5): 1002.</summary>
    ControlFrameTooLong,
    /// <summary>RSV bits on a control frame (RFC 7692 §6.1): 1002.</summary>
    ReservedBitsOnControlFrame,
    /// <summary>A continuation frame with no message to continue (§5.4): 1002.</summary>
    UnexpectedContinuation,
    /// <summary>RSV1 on a continuation frame (RFC 7692 §6.1): 1002.</summary>
    CompressedContinuation,
    /// <summary>A new text or binary frame before the fragmented message ended (§5.4): 1002.</summary>
    InterleavedMessage,
    /// <summary>A close payload of one byte (§5.5.1): 1002.</summary>
    ClosePayloadTooShort,
    /// <summary>A close code that may not be sent (§7.4): 1002.</summary>
    InvalidCloseCode,
    /// <summary>A close reason that is not UTF-8 (§5.5.1): 1002, the close frame itself is malformed.</summary>
    InvalidCloseReason,
    /// <summary>A text message that is not UTF-8 (§8.1), checked after inflation for compressed ones: 1007.</summary>
    InvalidUtf8,
    /// <summary>A message over the size limit, by its length headers or its inflated size (§7.4.1): 1009.</summary>
    MessageTooBig,
    /// <summary>A compressed message whose DEFLATE data is invalid (RFC 7692 §8.2.3.4 style): 1007.</summary>
    InvalidCompressedData,
}

/// <summary>Close codes and reasons for <see cref="FrameViolation"/>.</summary>
public static class FrameViolations
{
    /// <summary>The close code to fail the connection with.</summary>
    public static ushort CloseCode(FrameViolation violation) => violation switch
    {
        FrameViolation.None => WebSocketCloseCode.NormalClosure,
        FrameViolation.InvalidUtf8 or FrameViolation.InvalidCompressedData => WebSocketCloseCode.InvalidPayloadData,
        FrameViolation.MessageTooBig => WebSocketCloseCode.MessageTooBig,
        _ => WebSocketCloseCode.ProtocolError,
    };

    /// <summary>The short reason sent in the close frame (under 123 bytes).</summary>
    public static string Reason(FrameViolation violation) => violation switch
    {
        FrameViolation.None => "",
        FrameViolation.InvalidPayloadLength => "Invalid payload length",
        FrameViolation.ReservedBits => "Reserved bits set",
        FrameViolation.ReservedOpcode => "Reserved opcode",
        FrameViolation.UnmaskedClientFrame => "Client frames must be masked",
        FrameViolation.MaskedServerFrame => "Server frames must not be masked",
        FrameViolation.FragmentedControlFrame => "Fragmented control frame",
        FrameViolation.ControlFrameTooLong => "Control frame too long",
        FrameViolation.ReservedBitsOnControlFrame => "Reserved bits set on a control frame",
        FrameViolation.UnexpectedContinuation => "Continuation frame without a message",
        FrameViolation.CompressedContinuation => "RSV1 set on a continuation frame",
        FrameViolation.InterleavedMessage => "New data frame inside a fragmented message",
        FrameViolation.ClosePayloadTooShort => "Close payload of 1 byte",
        FrameViolation.InvalidCloseCode => "Invalid close code",
        FrameViolation.InvalidCloseReason => "Invalid UTF-8 in close reason",
        FrameViolation.InvalidUtf8 => "Invalid UTF-8 in text message",
        FrameViolation.MessageTooBig => "Message too big",
        FrameViolation.InvalidCompressedData => "Invalid compressed data",
        _ => "Protocol error",
    };
}
