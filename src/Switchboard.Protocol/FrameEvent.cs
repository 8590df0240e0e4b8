using System.Buffers;

namespace Switchboard.Protocol;

/// <summary>What <see cref="FrameDecoder.Decode"/> produced.</summary>
public enum DecodeStatus
{
    /// <summary>Nothing more can be decoded until more bytes arrive. The reader was advanced past whatever was consumed.</summary>
    NeedMoreData,
    /// <summary>An event is ready in the out parameter.</summary>
    Event,
}

/// <summary>The kind of a decoded event.</summary>
public enum FrameEventKind
{
    /// <summary>A piece of a data message's payload (already unmasked, UTF-8 checked so far for text).</summary>
    Data,
    /// <summary>A complete ping; the payload must be echoed in a pong (§5.5.2).</summary>
    Ping,
    /// <summary>A complete pong (§5.5.3).</summary>
    Pong,
    /// <summary>A valid close frame (§5.5.1); <see cref="FrameEvent.CloseCode"/> is 1005 when it carried no code.</summary>
    Close,
    /// <summary>
    /// The peer broke a rule; fail the connection (§7.1.7) with <see cref="FrameEvent.CloseCode"/> and
    /// <see cref="FrameEvent.Reason"/>. The decoder accepts no more input.
    /// </summary>
    ProtocolError,
}

/// <summary>
/// One decoded event. <see cref="Payload"/> points into the input buffer (unmasked in place) and is valid
/// only until that buffer is released.
/// </summary>
public readonly struct FrameEvent
{
    private FrameEvent(FrameEventKind kind, MessageType messageType, ReadOnlySequence<byte> payload, bool endOfMessage, ushort closeCode, string? reason, bool compressed = false, FrameViolation violation = FrameViolation.None)
    {
        Violation = violation;
        Compressed = compressed;
        Kind = kind;
        MessageType = messageType;
        Payload = payload;
        EndOfMessage = endOfMessage;
        CloseCode = closeCode;
        Reason = reason;
    }

    /// <summary>The event kind.</summary>
    public FrameEventKind Kind { get; }
    /// <summary>For <see cref="FrameEventKind.Data"/>: the message's type.</summary>
    public MessageType MessageType { get; }
    /// <summary>The payload piece (data) or whole payload (ping, pong).</summary>
    public ReadOnlySequence<byte> Payload { get; }
    /// <summary>For <see cref="FrameEventKind.Data"/>: this piece ends the message.</summary>
    public bool EndOfMessage { get; }
    /// <summary>
    /// For <see cref="FrameEventKind.Data"/>: the message is compressed (permessage-deflate, RSV1 on its first frame):
    /// <see cref="Payload"/> is DEFLATE data, not yet UTF-8 checked — the caller inflates and validates it.
    /// </summary>
    public bool Compressed { get; }
    /// <summary>For close: the received code. For a protocol error: the code to close with.</summary>
    public ushort CloseCode { get; }
    /// <summary>For a protocol error: the rule the peer broke.</summary>
    public FrameViolation Violation { get; }
    /// <summary>For close: the received reason. For a protocol error: a short reason to send.</summary>
    public string? Reason { get; }

    internal static FrameEvent Data(MessageType type, ReadOnlySequence<byte> payload, bool end, bool compressed) => new(FrameEventKind.Data, type, payload, end, 0, null, compressed);
    internal static FrameEvent Control(FrameEventKind kind, ReadOnlySequence<byte> payload) => new(kind, default, payload, true, 0, null);
    internal static FrameEvent Close(ushort code, string reason, ReadOnlySequence<byte> payload) => new(FrameEventKind.Close, default, payload, true, code, reason);
    internal static FrameEvent Error(FrameViolation violation) =>
        new(FrameEventKind.ProtocolError, default, default, true, FrameViolations.CloseCode(violation), FrameViolations.Reason(violation), violation: violation);
}
