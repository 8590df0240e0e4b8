namespace Switchboard.Hub.Messages;

/// <summary>The <c>type</c> of every hub protocol message (docs/protocol.md describes each).</summary>
public static class HubMessageTypes
{
    /// <summary>Client → server: join a room.</summary>
    public const string Join = "join";
    /// <summary>Client → server: leave a room.</summary>
    public const string Leave = "leave";
    /// <summary>Client → server: publish a message.</summary>
    public const string Publish = "publish";
    /// <summary>Client → server: read older messages.</summary>
    public const string History = "history";
    /// <summary>Client → server: a fresh token.</summary>
    public const string Refresh = "refresh";
    /// <summary>Client → server: are you there.</summary>
    public const string Ping = "ping";

    /// <summary>Server → client: the first message on every connection.</summary>
    public const string Welcome = "welcome";
    /// <summary>Server → client: reply to join.</summary>
    public const string Joined = "joined";
    /// <summary>Server → client: a message in a joined room.</summary>
    public const string Message = "message";
    /// <summary>Server → client: a publish is stored.</summary>
    public const string Ack = "ack";
    /// <summary>Server → client: reply to leave, or the server took the connection out of a room.</summary>
    public const string Left = "left";
    /// <summary>Server → client: a user joined a room.</summary>
    public const string MemberJoined = "member_joined";
    /// <summary>Server → client: a user left a room.</summary>
    public const string MemberLeft = "member_left";
    /// <summary>Server → client: messages removed by retention.</summary>
    public const string Gap = "gap";
    /// <summary>Server → client: fell behind the live stream; replaying from history.</summary>
    public const string Lagging = "lagging";
    /// <summary>Server → client: the room's history was deleted; offsets start over in a new epoch.</summary>
    public const string Reset = "reset";
    /// <summary>Server → client: reply to ping.</summary>
    public const string Pong = "pong";
    /// <summary>Server → client: reply to refresh.</summary>
    public const string Refreshed = "refreshed";
    /// <summary>Server → client: a command failed.</summary>
    public const string Error = "error";

    /// <summary>Every message the server sends, by type: the protocol's definition that clients in other languages are checked against.</summary>
    public static IReadOnlyDictionary<string, Type> ServerMessages { get; } = new Dictionary<string, Type>(StringComparer.Ordinal)
    {
        [Welcome] = typeof(WelcomeMessage),
        [Joined] = typeof(JoinedMessage),
        [Message] = typeof(MessageEvent),
        [Ack] = typeof(AckMessage),
        [Left] = typeof(LeftMessage),
        [MemberJoined] = typeof(PresenceMessage),
        [MemberLeft] = typeof(PresenceMessage),
        [Gap] = typeof(GapMessage),
        [Lagging] = typeof(LaggingMessage),
        [Reset] = typeof(ResetMessage),
        [History] = typeof(HistoryMessage),
        [Pong] = typeof(PongMessage),
        [Refreshed] = typeof(RefreshedMessage),
        [Error] = typeof(ErrorMessage),
    };

    /// <summary>Every command a client sends, by type.</summary>
    public static IReadOnlyDictionary<string, Type> ClientCommands { get; } = new Dictionary<string, Type>(StringComparer.Ordinal)
    {
        [Join] = typeof(JoinCommand),
        [Leave] = typeof(LeaveCommand),
        [Publish] = typeof(PublishCommand),
        [History] = typeof(HistoryCommand),
        [Refresh] = typeof(RefreshCommand),
        [Ping] = typeof(PingCommand),
    };
}
