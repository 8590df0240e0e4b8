using Switchboard.Hub.Messages;

namespace Switchboard.Client;

/// <summary>The client's connection state.</summary>
public enum ConnectionState
{
    /// <summary>The first connection attempt is in progress.</summary>
    Connecting,
    /// <summary>Connected; joined rooms are live.</summary>
    Connected,
    /// <summary>The connection was lost; waiting to reconnect (see <see cref="SwitchboardClient.NextRetry"/>).</summary>
    Reconnecting,
    /// <summary>Closed for good (disposed, or reconnecting gave up).</summary>
    Closed,
}

/// <summary>A message in a room.</summary>
/// <param name="Room">The room.</param>
/// <param name="Offset">Its position in the room (dense, from 1).</param>
/// <param name="Id">The publisher's id for it.</param>
/// <param name="From">The sender's user id.</param>
/// <param name="Name">The sender's display name.</param>
/// <param name="Text">The text.</param>
/// <param name="Time">When the server stored it.</param>
public sealed record HubMessage(string Room, long Offset, string Id, string From, string Name, string Text, DateTimeOffset Time);

/// <summary>Something that happened in a joined room, other than a message.</summary>
/// <param name="Room">The room.</param>
public abstract record HubEvent(string Room);

/// <summary>A user joined the room (their first connection).</summary>
public sealed record MemberJoined(string Room, string User, string Name) : HubEvent(Room);

/// <summary>A user left the room (their last connection).</summary>
public sealed record MemberLeft(string Room, string User, string Name) : HubEvent(Room);

/// <summary>The server took this connection out of the room (it will not rejoin it): <paramref name="Reason"/> is an error code such as "forbidden".</summary>
public sealed record RemovedFromRoom(string Room, string Reason, string Message) : HubEvent(Room);

/// <summary>Messages <paramref name="From"/>..<paramref name="To"/> were removed by retention and will never arrive.</summary>
public sealed record MessagesLost(string Room, long From, long To) : HubEvent(Room);

/// <summary>
/// This connection fell behind the room's live stream; the server replays everything after <paramref name="Offset"/>
/// from history, then goes live again. Nothing is lost (messages keep arriving in order); a UI may say "catching up".
/// </summary>
public sealed record CatchingUp(string Room, long Offset) : HubEvent(Room);

/// <summary>The room's history was lost and restarted on the server; offsets start over.</summary>
public sealed record HistoryReset(string Room, string Epoch) : HubEvent(Room);

/// <summary>A published message was stored.</summary>
/// <param name="Room">The room.</param>
/// <param name="Id">The message id.</param>
/// <param name="Offset">Its offset.</param>
/// <param name="Duplicate">True when the server had already stored it (a retry).</param>
public sealed record PublishResult(string Room, string Id, long Offset, bool Duplicate);

/// <summary>
/// The address answered as a WebSocket server, but not as a Switchboard hub (no <c>welcome</c> first): e.g. <c>/echo</c>,
/// <c>/ws</c> or another program. The message suggests the hub's address.
/// </summary>
public sealed class NotAHubException(Uri url, string why) : Exception(
    $"{Redact(url)} is not a Switchboard hub: {why}. The hub is at {new UriBuilder(url) { Path = "/hub", Query = "" }.Uri}.")
{
    /// <summary>The address without an access token in its query (safe to print).</summary>
    internal static string Redact(Uri url) =>
        System.Text.RegularExpressions.Regex.Replace(url.ToString(), "(access_token=)[^&]*", "$1…");
}

/// <summary>The server answered a command with an error (docs/protocol.md lists the codes).</summary>
public sealed class HubErrorException(string code, string message) : Exception(message)
{
    /// <summary>The error code, e.g. "forbidden".</summary>
    public string Code { get; } = code;
}

/// <summary>How to reconnect: exponential backoff with full jitter.</summary>
public sealed class ReconnectPolicy
{
    /// <summary>Delay before the first retry. Default 0.5 s.</summary>
    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Largest delay. Default 30 s.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Growth per failed attempt. Default 2.</summary>
    public double Multiplier { get; init; } = 2;

    /// <summary>Pick each delay uniformly between zero and the backoff ("full jitter"), so clients spread out. Default true.</summary>
    public bool Jitter { get; init; } = true;

    /// <summary>Give up after this many failed attempts in a row; null retries forever (the default).</summary>
    public int? MaxAttempts { get; init; }

    /// <summary>Never reconnect.</summary>
    public static ReconnectPolicy None { get; } = new() { MaxAttempts = 0 };

    /// <summary>The delay before attempt <paramref name="attempt"/> (1-based).</summary>
    public TimeSpan DelayFor(int attempt, Random random)
    {
        double backoff = Math.Min(MaxDelay.TotalMilliseconds, InitialDelay.TotalMilliseconds * Math.Pow(Multiplier, Math.Max(0, attempt - 1)));
        return TimeSpan.FromMilliseconds(Jitter ? random.NextDouble() * backoff : backoff);
    }
}

/// <summary>Settings for <see cref="SwitchboardClient"/>.</summary>
public sealed class SwitchboardClientOptions
{
    /// <summary>Display name (without authentication). Default "Anonymous".</summary>
    public string Name { get; init; } = "Anonymous";

    /// <summary>Stable user id (without authentication); default: the name.</summary>
    public string? User { get; init; }

    /// <summary>A JWT, when the server requires one (sent as Authorization: Bearer).</summary>
    public string? Token { get; init; }

    /// <summary>Reconnect behaviour.</summary>
    public ReconnectPolicy Reconnect { get; init; } = new();

    /// <summary>Messages buffered for <see cref="SwitchboardClient.Messages"/> before the connection waits for the reader. Default 10,000.</summary>
    public int MessageBuffer { get; init; } = 10_000;

    /// <summary>
    /// How long to wait for the hub's <c>welcome</c> after the WebSocket is up; without it the address is not a
    /// Switchboard hub (<see cref="NotAHubException"/>). Default 5 s.
    /// </summary>
    public TimeSpan WelcomeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Offer permessage-deflate (RFC 7692). Default true: history pages and long messages travel compressed when the
    /// server agrees; short messages are sent as they are.
    /// </summary>
    public bool Compression { get; init; } = true;

    /// <summary>WebSocket settings (TLS validation, headers, connect timeout).</summary>
    public Switchboard.WebSockets.WebSocketClientOptions? WebSocket { get; init; }

    /// <summary>
    /// Creates message ids for <see cref="SwitchboardClient.PublishAsync"/>. Default: <see cref="MessageIds.New"/>, ids that
    /// sort by the time they were made (random ones cost the server's store far more: docs/protocol.md).
    /// </summary>
    public Func<string> NewMessageId { get; init; } = () => MessageIds.New(DateTimeOffset.UtcNow);

    /// <summary>
    /// Where the client notes what it ignored: a server message of a type it does not know (from a newer server) or one
    /// it cannot read. Neither fails the connection.
    /// </summary>
    public Microsoft.Extensions.Logging.ILogger? Logger { get; init; }
}

/// <summary>The server's answer to a join.</summary>
/// <param name="Room">The room.</param>
/// <param name="Epoch">The room history's epoch.</param>
/// <param name="Offset">The room's last offset when joined.</param>
/// <param name="Members">Who is in the room (user id, display name).</param>
public sealed record JoinedRoom(string Room, string Epoch, long Offset, IReadOnlyList<(string User, string Name)> Members);
