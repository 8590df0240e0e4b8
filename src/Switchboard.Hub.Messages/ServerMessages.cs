using System.Text.Json.Serialization;

namespace Switchboard.Hub.Messages;

/// <summary>A message from the server. Fields a newer server adds are ignored by readers of this definition.</summary>
/// <param name="Type">The message's type (<see cref="HubMessageTypes"/>).</param>
public abstract record ServerMessage([property: JsonPropertyOrder(-2)] string Type);

/// <summary>A reply to a command: carries the command's <c>ref</c> when it had one.</summary>
/// <param name="Type">The message's type.</param>
public abstract record ServerReply(string Type) : ServerMessage(Type)
{
    /// <summary>The command's <c>ref</c>; absent when the command had none or the server sent this on its own.</summary>
    [JsonPropertyOrder(-1)]
    public string? Ref { get; init; }
}

/// <summary>The first message on every connection.</summary>
/// <param name="ConnectionId">This connection's id.</param>
/// <param name="User">The user id.</param>
/// <param name="Name">The display name.</param>
/// <param name="ServerTime">The server's clock (UTC).</param>
/// <param name="Protocol">The protocol version.</param>
public sealed record WelcomeMessage(
    string ConnectionId,
    string User,
    string Name,
    DateTimeOffset ServerTime,
    int Protocol) : ServerMessage(HubMessageTypes.Welcome);

/// <summary>A member of a room: one entry per user.</summary>
/// <param name="User">The user id.</param>
/// <param name="Name">The display name.</param>
public sealed record RoomMember(string User, string Name);

/// <summary>The reply to join.</summary>
/// <param name="Room">The room.</param>
/// <param name="Epoch">The room history's epoch.</param>
/// <param name="Offset">The room's last offset when joined.</param>
/// <param name="From">Messages after this offset follow.</param>
/// <param name="Members">Who is in the room.</param>
/// <param name="EpochChanged">The client's epoch was stale: the history started over (sent only when true).</param>
public sealed record JoinedMessage(
    string Room,
    string Epoch,
    long Offset,
    long From,
    IReadOnlyList<RoomMember> Members,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool EpochChanged = false) : ServerReply(HubMessageTypes.Joined);

/// <summary>A message in a joined room, in offset order.</summary>
/// <param name="Room">The room.</param>
/// <param name="Offset">Its offset (dense, from 1).</param>
/// <param name="Id">The publisher's id for it.</param>
/// <param name="From">The sender's user id.</param>
/// <param name="Name">The sender's display name.</param>
/// <param name="Text">The text.</param>
/// <param name="Time">When the server stored it (UTC).</param>
public sealed record MessageEvent(
    string Room,
    long Offset,
    string Id,
    string From,
    string Name,
    string Text,
    DateTimeOffset Time) : ServerMessage(HubMessageTypes.Message);

/// <summary>A stored message in a <c>history</c> reply (the room is the reply's).</summary>
/// <param name="Offset">Its offset.</param>
/// <param name="Id">The publisher's id for it.</param>
/// <param name="From">The sender's user id.</param>
/// <param name="Name">The sender's display name.</param>
/// <param name="Text">The text.</param>
/// <param name="Time">When the server stored it (UTC).</param>
public sealed record HistoryItem(
    long Offset,
    string Id,
    string From,
    string Name,
    string Text,
    DateTimeOffset Time);

/// <summary>The acknowledgement of a publish: the message is durably stored.</summary>
/// <param name="Id">The message id.</param>
/// <param name="Room">The room.</param>
/// <param name="Offset">Its offset.</param>
/// <param name="Duplicate">A message with this id was already stored; nothing new was (sent only when true).</param>
public sealed record AckMessage(
    string Id,
    string Room,
    long Offset,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool Duplicate = false) : ServerReply(HubMessageTypes.Ack);

/// <summary>
/// The reply to leave; also sent without a <c>ref</c> when the server takes the connection out of a room, with
/// <paramref name="Reason"/> (an error code) and <paramref name="Message"/>.
/// </summary>
/// <param name="Room">The room.</param>
/// <param name="Reason">Why, when the client did not ask.</param>
/// <param name="Message">Why, for people.</param>
public sealed record LeftMessage(string Room, string? Reason = null, string? Message = null) : ServerReply(HubMessageTypes.Left);

/// <summary><c>member_joined</c> or <c>member_left</c>: presence in a joined room, once per user.</summary>
/// <param name="Type"><see cref="HubMessageTypes.MemberJoined"/> or <see cref="HubMessageTypes.MemberLeft"/>.</param>
/// <param name="Room">The room.</param>
/// <param name="User">The user id.</param>
/// <param name="Name">The display name.</param>
public sealed record PresenceMessage(string Type, string Room, string User, string Name) : ServerMessage(Type);

/// <summary>Messages <paramref name="From"/>..<paramref name="To"/> are gone and will never be delivered.</summary>
/// <param name="Room">The room.</param>
/// <param name="From">The first missing offset.</param>
/// <param name="To">The last missing offset.</param>
/// <param name="Reason">Why (<c>retention</c>).</param>
public sealed record GapMessage(string Room, long From, long To, string Reason) : ServerMessage(HubMessageTypes.Gap);

/// <summary>The connection fell behind the live stream; everything after <paramref name="Offset"/> is replayed, then live again.</summary>
/// <param name="Room">The room.</param>
/// <param name="Offset">The last offset sent live.</param>
public sealed record LaggingMessage(string Room, long Offset) : ServerMessage(HubMessageTypes.Lagging);

/// <summary>The room's history was deleted: offsets start over after <paramref name="Offset"/> in <paramref name="Epoch"/>.</summary>
/// <param name="Room">The room.</param>
/// <param name="Epoch">The new epoch.</param>
/// <param name="Offset">The new history's last offset (0: empty); messages after it follow.</param>
public sealed record ResetMessage(string Room, string Epoch, long Offset) : ServerMessage(HubMessageTypes.Reset);

/// <summary>The reply to history.</summary>
/// <param name="Room">The room.</param>
/// <param name="Epoch">The room history's epoch.</param>
/// <param name="Messages">Ascending.</param>
/// <param name="More">Older messages exist: ask again with before = the first offset.</param>
public sealed record HistoryMessage(string Room, string Epoch, IReadOnlyList<HistoryItem> Messages, bool More) : ServerReply(HubMessageTypes.History);

/// <summary>The reply to ping.</summary>
public sealed record PongMessage() : ServerReply(HubMessageTypes.Pong);

/// <summary>The reply to refresh.</summary>
public sealed record RefreshedMessage() : ServerReply(HubMessageTypes.Refreshed);

/// <summary>A command failed.</summary>
/// <param name="Code">The error code (docs/protocol.md lists them).</param>
/// <param name="Message">What went wrong, for people.</param>
/// <param name="RetryAfterMs">When to retry, for rate limits.</param>
public sealed record ErrorMessage(string Code, string Message, long? RetryAfterMs = null) : ServerReply(HubMessageTypes.Error);
