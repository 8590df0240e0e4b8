using System.Text.Json.Serialization;

namespace Switchboard.Hub.Messages;

/// <summary>
/// A command from a client. Every field a server validates is optional here, so that a command with a field missing
/// still reads and the server can answer with the error that names it (docs/protocol.md, error codes).
/// </summary>
/// <param name="Type">The command's type (<see cref="HubMessageTypes"/>).</param>
public abstract record ClientCommand([property: JsonPropertyOrder(-2)] string Type)
{
    /// <summary>Echoed in the reply, so a client can match replies to commands. A number is read as its text.</summary>
    [JsonPropertyOrder(-1)]
    [JsonConverter(typeof(RefConverter))]
    public string? Ref { get; init; }
}

/// <summary>Join a room: messages after <paramref name="Since"/> (or recent history), then live ones.</summary>
/// <param name="Room">The room.</param>
/// <param name="Since">The last offset the client has seen.</param>
/// <param name="Epoch">The epoch from the earlier <c>joined</c>: a stale one means the history started over.</param>
public sealed record JoinCommand(string? Room = null, long? Since = null, string? Epoch = null) : ClientCommand(HubMessageTypes.Join);

/// <summary>Leave a room.</summary>
/// <param name="Room">The room.</param>
public sealed record LeaveCommand(string? Room = null) : ClientCommand(HubMessageTypes.Leave);

/// <summary>Publish a message; acknowledged once stored. A retry reuses <paramref name="Id"/>.</summary>
/// <param name="Room">The room.</param>
/// <param name="Text">The text.</param>
/// <param name="Id">The client's id for the message (idempotency key).</param>
public sealed record PublishCommand(string? Room = null, string? Text = null, string? Id = null) : ClientCommand(HubMessageTypes.Publish);

/// <summary>Read messages before <paramref name="Before"/> (newest when absent), at most <paramref name="Limit"/>.</summary>
/// <param name="Room">The room.</param>
/// <param name="Before">An offset.</param>
/// <param name="Limit">How many.</param>
public sealed record HistoryCommand(string? Room = null, long? Before = null, long? Limit = null) : ClientCommand(HubMessageTypes.History);

/// <summary>A fresh token for the same subject (authentication on only).</summary>
/// <param name="Token">The token.</param>
public sealed record RefreshCommand(string? Token = null) : ClientCommand(HubMessageTypes.Refresh);

/// <summary>Are you there (the server answers <c>pong</c>).</summary>
public sealed record PingCommand() : ClientCommand(HubMessageTypes.Ping);
