using System.Buffers;

namespace Switchboard.Protocol;

/// <summary>The kind of a <see cref="ProtocolEvent"/>.</summary>
public enum ProtocolEventKind : byte
{
    /// <summary>A whole message (joined from its fragments, inflated when compressed, UTF-8 checked when text).</summary>
    Message,
    /// <summary>A piece of a message, when the protocol delivers chunks (<see cref="WebSocketProtocol.DeliverChunks"/>).</summary>
    MessageChunk,
    /// <summary>A ping. When <see cref="ProtocolEvent.HasReply"/>, queue <see cref="WebSocketProtocol.ReplyTo"/> (its pong).</summary>
    Ping,
    /// <summary>A pong (§5.5.3): liveness, or the answer to an application's ping.</summary>
    Pong,
    /// <summary>
    /// The peer's close frame (§5.5.1). When <see cref="ProtocolEvent.HasReply"/>, queue <see cref="WebSocketProtocol.ReplyTo"/>
    /// (the echo of its code, §7.1.5). The protocol receives nothing after it.
    /// </summary>
    Close,
    /// <summary>
    /// The peer broke a rule (<see cref="ProtocolEvent.Violation"/>): call <see cref="WebSocketProtocol.Fail"/> once the
    /// application has handled the messages before it. The protocol receives nothing after it.
    /// </summary>
    Violation,
}

/// <summary>
/// What <see cref="WebSocketProtocol.TryReceive"/> produced (small: it is copied once per message). <see cref="Payload"/> points into the input or the
/// protocol's message buffer and is valid until the next call to <see cref="WebSocketProtocol.TryReceive"/>.
/// </summary>
public readonly struct ProtocolEvent
{
    private ProtocolEvent(ProtocolEventKind kind, MessageType type, ReadOnlySequence<byte> payload, bool end,
        ushort closeCode = 0, string? reason = null, FrameViolation violation = FrameViolation.None, bool hasReply = false)
    {
        Kind = kind;
        MessageType = type;
        Payload = payload;
        EndOfMessage = end;
        CloseCode = closeCode;
        Reason = reason;
        Violation = violation;
        HasReply = hasReply;
    }

    /// <summary>The event kind.</summary>
    public ProtocolEventKind Kind { get; }

    /// <summary>For messages and chunks: text or binary.</summary>
    public MessageType MessageType { get; }

    /// <summary>The message, chunk, ping or pong payload.</summary>
    public ReadOnlySequence<byte> Payload { get; }

    /// <summary>For chunks: this one ends the message (always true for a whole message).</summary>
    public bool EndOfMessage { get; }

    /// <summary>For close: the peer's code (1005 when it sent none). For a violation: the code to fail with.</summary>
    public ushort CloseCode { get; }

    /// <summary>For close: the peer's reason. For a violation: the reason to send.</summary>
    public string? Reason { get; }

    /// <summary>For a violation: the rule broken.</summary>
    public FrameViolation Violation { get; }

    /// <summary>True when the answer <see cref="WebSocketProtocol.ReplyTo"/> gives (a pong, or the close reply) must be queued.</summary>
    public bool HasReply { get; }

    internal static ProtocolEvent Message(MessageType type, ReadOnlySequence<byte> payload) => new(ProtocolEventKind.Message, type, payload, true);

    internal static ProtocolEvent Chunk(MessageType type, ReadOnlySequence<byte> payload, bool end) => new(ProtocolEventKind.MessageChunk, type, payload, end);

    internal static ProtocolEvent Ping(ReadOnlySequence<byte> payload, bool answer) => new(ProtocolEventKind.Ping, default, payload, true, hasReply: answer);

    internal static ProtocolEvent Pong(ReadOnlySequence<byte> payload) => new(ProtocolEventKind.Pong, default, payload, true);

    internal static ProtocolEvent Close(ushort code, string reason, bool hasReply) => new(ProtocolEventKind.Close, default, default, true, code, reason, hasReply: hasReply);

    internal static ProtocolEvent Failure(FrameViolation violation) =>
        new(ProtocolEventKind.Violation, default, default, true, FrameViolations.CloseCode(violation), FrameViolations.Reason(violation), violation);
}
