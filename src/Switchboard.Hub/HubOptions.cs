using System.Buffers;

namespace Switchboard.Hub;

/// <summary>Hub settings.</summary>
public sealed class HubOptions
{
    /// <summary>Create a room the first time someone joins or publishes to it. Default true.</summary>
    public bool AutoCreateRooms { get; init; } = true;

    /// <summary>Rooms that always exist, besides "general" (the seed chat's room), which always does.</summary>
    public IReadOnlyList<string> Rooms { get; init; } = [];

    /// <summary>Largest message text, in UTF-8 bytes. Default 16 KiB.</summary>
    public int MaxTextBytes { get; init; } = 16 * 1024;

    /// <summary>Longest client message id. Default 128 characters.</summary>
    public int MaxIdLength { get; init; } = 128;

    /// <summary>Messages sent on join when the client gives no <c>since</c>. Default 50.</summary>
    public int HistoryOnJoin { get; init; } = 50;

    /// <summary>Largest <c>history</c> page. Default 500.</summary>
    public int MaxHistoryPage { get; init; } = 500;

    /// <summary>
    /// Largest <c>history</c> reply in (estimated) bytes: a page of 500 maximum-size messages would be ~50 MB on the
    /// wire. A page is cut at this size, newest messages kept, with <c>more</c> set. Default 1 MiB.
    /// </summary>
    public long MaxHistoryBytes { get; init; } = 1024 * 1024;

    /// <summary>Messages per store read while a joining client catches up. Default 500.</summary>
    public int CatchUpPageSize { get; init; } = 500;

    /// <summary>Recent messages kept in memory per room, so most joins switch to live without a store read. Default 256.</summary>
    public int RecentCacheSize { get; init; } = 256;

    /// <summary>
    /// Largest message a client may send on <c>/hub</c> and <c>/ws</c> (a command); larger ones close the connection
    /// with 1009. Default 256 KiB, raised when the largest valid publish needs more (<see cref="EffectiveMaxCommandBytes"/>).
    /// </summary>
    public long MaxCommandBytes { get; init; } = 256 * 1024;

    /// <summary>
    /// <see cref="MaxCommandBytes"/>, raised if needed so that every valid publish fits: <see cref="MaxTextBytes"/> of
    /// text with every character escaped as \uXXXX (6 bytes each), plus 1 KiB for the rest of the command.
    /// </summary>
    public long EffectiveMaxCommandBytes => Math.Max(MaxCommandBytes, (6L * MaxTextBytes) + 1024);

    /// <summary>
    /// Publishes one connection may make per second, sustained (on <c>/hub</c> and <c>/ws</c>); beyond it a publish is
    /// refused with <c>rate_limited</c> and not stored. Default 20 a second (with bursts of <see cref="PublishBurst"/>):
    /// far above what a person types, far below what fills a disk. 0 turns the limit off (load tests, trusted backends).
    /// </summary>
    public double PublishRateLimit { get; init; } = 20;

    /// <summary>
    /// Publishes one connection may have in flight (accepted, not yet acked). At the limit the server stops reading
    /// from the connection until acks go out: backpressure through TCP, so memory per connection stays bounded however
    /// fast it sends. Default 256.
    /// </summary>
    public int MaxPendingPublishes { get; init; } = 256;

    /// <summary>Bytes of text one connection may have in flight; the same backpressure as <see cref="MaxPendingPublishes"/>. Default 1 MiB.</summary>
    public long MaxPendingPublishBytes { get; init; } = 1024 * 1024;

    /// <summary>Publishes one connection may make at once before <see cref="PublishRateLimit"/> applies (e.g. messages typed offline, sent on reconnect). Default 100.</summary>
    public int PublishBurst { get; init; } = 100;

    /// <summary>
    /// New rooms one connection may create (by joining or publishing to a room that does not exist yet) per minute, in
    /// bursts of as many; beyond it <c>too_many_new_rooms</c>. Every room costs memory while open and disk once written.
    /// Default 20; 0: no limit.
    /// </summary>
    public int NewRoomsPerConnectionPerMinute { get; init; } = 20;

    /// <summary>New rooms the whole server may create per minute, whoever asks (many connections together). Default 600; 0: no limit.</summary>
    public int NewRoomsPerMinute { get; init; } = 600;

    /// <summary>
    /// Rooms this server knows at most: with a history in the store, configured, or open. A <c>join</c> or
    /// <c>publish</c> that would create one more gets <c>room_limit</c>; existing rooms are not affected. Each known room
    /// holds its name in memory and a row in the store for as long as the store keeps it, so the allowances per minute
    /// alone bound only how fast they accumulate. Default 100,000; 0: no limit.
    /// </summary>
    public int MaxRooms { get; init; } = 100_000;

    /// <summary>
    /// Rooms one connection may be in at once (each holds a subscription and presence in a room that then stays
    /// open); a <c>join</c> beyond it gets the error <c>too_many_rooms</c>. Default 128.
    /// </summary>
    public int MaxRoomsPerConnection { get; init; } = 128;

    /// <summary>
    /// Upper bound of one room's recent cache in bytes (a message takes 2 bytes per character of its strings plus 28),
    /// whatever the message count: 256 messages of the maximum size would otherwise hold ~12 MB per room. Default 1 MiB.
    /// </summary>
    public long RecentCacheBytes { get; init; } = 1024 * 1024;

    /// <summary>
    /// A room with no members, no subscribers and no activity for this long (counted from the first maintenance pass
    /// after its last activity, so that work items do not read the clock) is closed at the next maintenance pass
    /// (<see cref="Hub.ApplyRetentionAsync"/>): its cache and state leave memory, and the next use opens it again from
    /// the store. Rooms that were used once do not keep memory. Default 5 minutes.
    /// </summary>
    public TimeSpan IdleRoomRelease { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A connection's soft queue limit: while catching up, wait for the connection to drain before the next page once
    /// this many bytes are queued; after a command leaves more than this queued (replies the client does not read), read
    /// nothing more from it until it has drained; and refuse <c>history</c> with <c>busy</c> while over it. Default 256 KiB.
    /// </summary>
    public long CatchUpQueueLimit { get; init; } = 256 * 1024;

    /// <summary>
    /// A member whose connection has more than this many bytes queued stops receiving the live stream; when it has
    /// drained, it gets a <c>lagging</c> notice and replays what it missed from history, then goes live again.
    /// Default 1 MiB. (The engine's hard limit, which disconnects, is far higher.)
    /// </summary>
    public long LiveQueueLimit { get; init; } = 1024 * 1024;

    /// <summary>
    /// With a distributed broker: how long a message that arrived past a hole in the offsets waits for the missing ones
    /// from the broker before they are read from the store. Default 100 ms.
    /// </summary>
    public TimeSpan HoleWait { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// With a distributed broker: how often a room with live subscribers compares the store's head with what it
    /// delivered (broker messages lost at the end of a burst leave no hole behind to notice). Default 2 s.
    /// </summary>
    public TimeSpan HeadCheckInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Most publishes appended to the store in one batch. Default 256.</summary>
    public int MaxPublishBatch { get; init; } = 256;

    /// <summary>
    /// Retention for rooms without their own policy. Default: the last 10,000 messages of a room, none older than 30
    /// days, so one room holds at most ~160 MB of text however much is published to it. A policy with neither set
    /// (<see cref="RetentionPolicy.Unlimited"/>) keeps everything.
    /// </summary>
    public RetentionPolicy Retention { get; init; } = new(DefaultRetentionCount, DefaultRetentionAge); // an instance of its own: configuration binding sets its properties in place

    /// <summary>Messages a room keeps by default (<see cref="Retention"/>).</summary>
    public const int DefaultRetentionCount = 10_000;

    /// <summary>How long a room keeps a message by default (<see cref="Retention"/>).</summary>
    public static readonly TimeSpan DefaultRetentionAge = TimeSpan.FromDays(30);

    /// <summary>Retention per room name.</summary>
    public Dictionary<string, RetentionPolicy> RoomRetention { get; init; } = [];

    /// <summary>The clock for message times.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Room names: 1–64 of letters, digits, '.', '_' and '-', starting with a letter or digit.</summary>
    public static bool IsValidRoomName(string? name) =>
        name is { Length: >= 1 and <= 64 } && char.IsAsciiLetterOrDigit(name[0]) && !name.AsSpan().ContainsAnyExcept(RoomNameChars);

    /// <summary>The retention policy for a room.</summary>
    public RetentionPolicy RetentionFor(string room) => RoomRetention.TryGetValue(room, out RetentionPolicy? p) ? p : Retention;

    // Checked on every command that names a room. Not a regular expression: "$" there also matches before a final
    // line break, so "lobby\n" passed.
    private static readonly SearchValues<char> RoomNameChars = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
}

/// <summary>Who a connection is: a stable user id (two tabs of one user share it) and a display name.</summary>
public sealed record HubIdentity(string UserId, string Name);

/// <summary>
/// What one connection may do, when authentication is on (the server supplies it from the token). Absent:
/// everything is allowed and <c>refresh</c> is not available.
/// </summary>
public interface IHubAccess
{
    /// <summary>May join (and read the history of) <paramref name="room"/>.</summary>
    bool CanJoin(string room);

    /// <summary>May publish to <paramref name="room"/>.</summary>
    bool CanPublish(string room);

    /// <summary>Presents a fresh token; returns null when accepted, else the reason it was refused.</summary>
    ValueTask<string?> RefreshAsync(string token);
}
