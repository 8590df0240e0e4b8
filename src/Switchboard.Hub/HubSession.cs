using System.Buffers;
using System.Text;
using Microsoft.Extensions.Logging;
using Switchboard.Hub.Messages;

namespace Switchboard.Hub;

/// <summary>
/// One connection speaking the hub protocol: parses its commands, answers each (echoing its <c>ref</c>), and
/// keeps its room memberships. Call <see cref="HandleAsync"/> for every text message, in order, and
/// <see cref="DisconnectedAsync"/> once when the connection ends.
/// </summary>
public sealed class HubSession
{
    private readonly Hub _hub;
    // Made by the first join: most connections of a large server sit idle in no room (80 bytes each).
    private Dictionary<string, Subscriber>? _rooms;

    private readonly IHubAccess? _access;
    // Created by the first command that needs them (the read loop's, one at a time): an idle connection holds none.
    // A bucket created then is in the state one created at connect time would be in: full.
    private PublishRateLimiter? _publishes; // only when a limit is set
    private PublishWindow? _inFlight;
    private TokenBucket? _newRooms; // rooms this connection may create on first use

    internal HubSession(Hub hub, IHubConnection connection, HubIdentity identity, IHubAccess? access)
    {
        _hub = hub;
        Connection = connection;
        Identity = identity;
        _access = access;
    }

    private PublishWindow InFlight => _inFlight ??= new PublishWindow(_hub.Options, _hub.Metrics);

    /// <summary>Whether the connection has made its table of rooms (tests: an idle connection has not).</summary>
    internal bool HoldsRoomTable => Volatile.Read(ref _rooms) is not null;

    /// <summary>The rooms this connection is in, by name; also the lock for changing them.</summary>
    private Dictionary<string, Subscriber> Rooms =>
        Volatile.Read(ref _rooms) ?? Interlocked.CompareExchange(ref _rooms, new(StringComparer.Ordinal), null) ?? _rooms!;

    private TokenBucket? NewRooms => _newRooms ??= _hub.Options.NewRoomsPerConnectionPerMinute > 0
        ? new TokenBucket(_hub.Options.NewRoomsPerConnectionPerMinute / 60.0, _hub.Options.NewRoomsPerConnectionPerMinute, _hub.Options.Time)
        : null;

    /// <summary>The connection.</summary>
    public IHubConnection Connection { get; }

    /// <summary>Who is connected.</summary>
    public HubIdentity Identity { get; }

    private HubOptions Options => _hub.Options;

    /// <summary>Handles one text message (a command).</summary>
    public async ValueTask HandleAsync(ReadOnlySequence<byte> utf8)
    {
        if (!CommandEnvelope.TryParse(utf8, out CommandEnvelope cmd, out string? code, out string? error, out string? reference))
        {
            Reply(HubProtocol.Error(code!, error!, reference));
            return;
        }

        switch (cmd.Type)
        {
            case HubMessageTypes.Join when Read<JoinCommand>(cmd) is { } join:
                await JoinAsync(join).ConfigureAwait(false);
                break;
            case HubMessageTypes.Leave when Read<LeaveCommand>(cmd) is { } leave:
                await LeaveAsync(leave).ConfigureAwait(false);
                break;
            case HubMessageTypes.Publish when Read<PublishCommand>(cmd) is { } publish:
                await PublishAsync(publish).ConfigureAwait(false);
                break;
            case HubMessageTypes.History when Read<HistoryCommand>(cmd) is { } history:
                await HistoryAsync(history).ConfigureAwait(false);
                break;
            case HubMessageTypes.Refresh when Read<RefreshCommand>(cmd) is { } refresh:
                await RefreshAsync(refresh).ConfigureAwait(false);
                break;
            case HubMessageTypes.Ping:
                Reply(HubProtocol.Build(new PongMessage { Ref = cmd.Ref }));
                break;
            case HubMessageTypes.Join or HubMessageTypes.Leave or HubMessageTypes.Publish or HubMessageTypes.History or HubMessageTypes.Refresh:
                break; // unreadable: Read replied with the error
            default:
                Reply(HubProtocol.Error(HubErrorCodes.BadCommand, $"Unknown command type '{Truncate(cmd.Type)}'.", cmd.Ref));
                break;
        }

        // A client that sends commands without reading the replies: read nothing more until what it was sent has gone out.
        if (Connection.QueuedBytes > Options.CatchUpQueueLimit)
        {
            _hub.Metrics.ReadPaused();
            await Connection.WhenDrainedAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Leaves every room (presence: member_left where this was the user's last connection).</summary>
    public async ValueTask DisconnectedAsync()
    {
        _hub.Forget(this);
        if (Volatile.Read(ref _rooms) is not { } rooms)
        {
            return; // never in a room
        }

        List<(string Room, Subscriber Subscriber)> joined;
        lock (rooms)
        {
            joined = [.. rooms.Select(kv => (kv.Key, kv.Value))];
            rooms.Clear();
        }

        foreach (var (name, subscriber) in joined)
        {
            await LeaveRoomAsync(name, subscriber).ConfigureAwait(false);
        }
    }

    private void Reply(OutboundMessage message) => Connection.Send(message);

    /// <summary>The command as its type, or null after replying which field could not be read.</summary>
    private T? Read<T>(CommandEnvelope cmd)
        where T : ClientCommand
    {
        if (cmd.TryRead(out T? command, out string? code, out string? error))
        {
            return command;
        }

        Reply(HubProtocol.Error(code!, error!, cmd.Ref));
        return null;
    }

    /// <summary>Takes the subscriber out of the room (a room it is in does not close, but if it did there is nothing left to leave).</summary>
    private async Task LeaveRoomAsync(string name, Subscriber subscriber)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Room? room = await _hub.GetRoomAsync(name, create: false).ConfigureAwait(false);
        if (room is not null && room.TryPost(new Room.Leave(subscriber, done)))
        {
            await done.Task.ConfigureAwait(false);
        }
    }

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";

    private bool TryGetRoom(ClientCommand cmd, string? given, out string room)
    {
        room = given ?? string.Empty;
        if (given is null)
        {
            Reply(HubProtocol.Error(HubErrorCodes.BadCommand, $"'{cmd.Type}' needs a \"room\".", cmd.Ref));
            return false;
        }

        if (!HubOptions.IsValidRoomName(room))
        {
            Reply(HubProtocol.Error(HubErrorCodes.InvalidRoom,
                "Room names are 1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit.", cmd.Ref));
            return false;
        }

        return true;
    }

    private Task<Room?> OpenRoomAsync(ClientCommand cmd, string name, bool create) => RoomOrErrorAsync(cmd, name, () => _hub.GetRoomAsync(name, create));

    /// <summary>Queues the work for the room (creating it if allowed; a fresh one if it closed meanwhile), or replies why not.</summary>
    private ValueTask<Room?> PostToRoomAsync(ClientCommand cmd, string name, Room.Work work) =>
        _hub.TryPostToOpenRoom(name, work) is { } open ? new ValueTask<Room?>(open) : new ValueTask<Room?>(OpenAndPostAsync(cmd, name, work));

    /// <summary>The room is not open here yet (or just closed): open it, then post (apart, so the common case builds no closure).</summary>
    private Task<Room?> OpenAndPostAsync(ClientCommand cmd, string name, Room.Work work) =>
        RoomOrErrorAsync(cmd, name, () => _hub.PostAsync(name, create: true, _ => work, NewRooms));

    private async Task<Room?> RoomOrErrorAsync(ClientCommand cmd, string name, Func<Task<Room?>> get)
    {
        try
        {
            Room? room = await get().ConfigureAwait(false);
            if (room is null)
            {
                Reply(HubProtocol.Error(HubErrorCodes.RoomNotFound, $"Room '{name}' does not exist.", cmd.Ref));
            }

            return room;
        }
        catch (RoomCreationRefusedException refused)
        {
            Reply(HubProtocol.Error(HubErrorCodes.TooManyNewRooms, $"{refused.Message}; '{name}' was not created. Use existing rooms, or retry later.", refused.RetryAfter, cmd.Ref));
            return null;
        }
        catch (RoomLimitReachedException full)
        {
            Reply(HubProtocol.Error(HubErrorCodes.RoomLimit, $"{full.Message}; '{name}' was not created. Use existing rooms.", cmd.Ref));
            return null;
        }
        catch (Exception)
        {
            Reply(HubProtocol.Error(HubErrorCodes.Internal, "The room could not be opened; try again.", cmd.Ref));
            return null;
        }
    }

    private async ValueTask JoinAsync(JoinCommand cmd)
    {
        if (!TryGetRoom(cmd, cmd.Room, out string name))
        {
            return;
        }

        long? since = cmd.Since;
        if (since < 0)
        {
            Reply(HubProtocol.Error(HubErrorCodes.InvalidArgument, "\"since\" must be a non-negative integer offset.", cmd.Ref));
            return;
        }

        if (Forbidden(cmd, name, publish: false))
        {
            return;
        }

        string? epoch = cmd.Epoch;
        var subscriber = new Subscriber(Connection, Identity, RecoverAsync);
        Dictionary<string, Subscriber> rooms = Rooms;
        lock (rooms)
        {
            if (rooms.ContainsKey(name))
            {
                Reply(HubProtocol.Error(HubErrorCodes.AlreadyJoined, $"Already joined '{name}'.", cmd.Ref));
                return;
            }

            if (rooms.Count >= Options.MaxRoomsPerConnection)
            {
                Reply(HubProtocol.Error(HubErrorCodes.TooManyRooms, $"A connection may be in at most {Options.MaxRoomsPerConnection} rooms at once; leave one first.", cmd.Ref));
                return;
            }

            rooms.Add(name, subscriber);
        }

        var started = new TaskCompletionSource<(long Cursor, string Epoch)?>(TaskCreationOptions.RunContinuationsAsynchronously);
        Room? room = await PostToRoomAsync(cmd, name, new Room.JoinStart(subscriber, since, epoch, cmd.Ref, started)).ConfigureAwait(false);
        if (room is null)
        {
            lock (rooms)
            {
                rooms.Remove(name);
            }

            return;
        }

        _hub.Background.Track(CatchUpWhenNeededAsync(room, subscriber, started.Task));
    }

    /// <summary>
    /// Streams the history a joining client missed, a page at a time and only as fast as the connection drains,
    /// then asks the room worker to switch it to live at exactly the offset reached: no gap, no duplicate, and
    /// bounded memory however far behind the client is.
    /// </summary>
    private async Task CatchUpWhenNeededAsync(Room room, Subscriber subscriber, Task<(long Cursor, string Epoch)?> started)
    {
        if (await started.ConfigureAwait(false) is var (cursor, epoch))
        {
            await CatchUpAsync(room, subscriber, cursor, epoch).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A member fell behind the live stream (its connection queue passed the live limit): once the connection has
    /// drained, tell it (<c>lagging</c>) and replay everything after <paramref name="lastOffset"/> from history, then
    /// go live again — the member loses nothing and the room never waits for it.
    /// </summary>
    internal async Task RecoverAsync(Room room, Subscriber subscriber, long lastOffset, string epoch)
    {
        await Connection.WhenDrainedAsync().ConfigureAwait(false);
        if (subscriber.Removed)
        {
            return;
        }

        if (subscriber.SendIfMember(HubProtocol.Build(new LaggingMessage(room.Name, lastOffset))))
        {
            await CatchUpAsync(room, subscriber, lastOffset, epoch).ConfigureAwait(false);
        }
    }

    /// <summary>Streams history after <paramref name="cursor"/> (an offset of <paramref name="epoch"/>) page by page, then goes live.</summary>
    private async Task CatchUpAsync(Room room, Subscriber subscriber, long cursor, string epoch)
    {
        using System.Diagnostics.Activity? trace = HubTracing.StartCatchUp(room.Name, cursor, "store");
        try
        {
            while (!subscriber.Removed)
            {
                if (Connection.QueuedBytes > Options.CatchUpQueueLimit)
                {
                    await Connection.WhenDrainedAsync().ConfigureAwait(false);
                    continue;
                }

                if (room.State.Epoch != epoch)
                {
                    // The history was deleted meanwhile: the member starts over from the new epoch's beginning.
                    epoch = room.State.Epoch;
                    cursor = 0;
                    if (!subscriber.SendIfMember(HubProtocol.Build(new ResetMessage(room.Name, epoch, 0))))
                    {
                        return;
                    }
                }

                IReadOnlyList<StoredMessage> page = await _hub.Store.ReadAfterAsync(room.Name, cursor, Options.CatchUpPageSize).ConfigureAwait(false);
                if (room.PendingReset is Task resetting)
                {
                    await resetting.ConfigureAwait(false); // the page may be of either epoch: read again once the room knows
                    continue;
                }

                if (room.State.Epoch != epoch)
                {
                    continue;
                }

                // Each send checks that the member is still in the room: nothing may follow its "left".
                if (page.Count > 0 && page[0].Offset > cursor + 1)
                {
                    if (!subscriber.SendIfMember(Room.Gap(room.Name, cursor + 1, page[0].Offset - 1)))
                    {
                        return;
                    }
                }
                else if (page.Count == 0 && cursor < room.State.First - 1)
                {
                    if (!subscriber.SendIfMember(Room.Gap(room.Name, cursor + 1, room.State.First - 1)))
                    {
                        return;
                    }

                    cursor = room.State.First - 1;
                }

                foreach (StoredMessage m in page)
                {
                    if (!subscriber.SendIfMember(HubProtocol.Message(room.Name, m)))
                    {
                        return;
                    }

                    cursor = m.Offset;
                }

                if (page.Count < Options.CatchUpPageSize)
                {
                    var live = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                    if (!room.TryPost(new Room.GoLive(subscriber, cursor, epoch, live)) || await live.Task.ConfigureAwait(false))
                    {
                        return; // live now; or the room closed, which it does only after this member left
                    }
                }
            }
        }
        catch (Exception)
        {
            subscriber.SendIfMember(HubProtocol.Error(HubErrorCodes.Internal, $"Catching up on '{room.Name}' failed; join again to resume.", null));
        }
    }

    private async ValueTask RefreshAsync(RefreshCommand cmd)
    {
        if (_access is null)
        {
            Reply(HubProtocol.Error(HubErrorCodes.BadCommand, "Authentication is not enabled on this server; there is nothing to refresh.", cmd.Ref));
            return;
        }

        string? token = cmd.Token;
        if (string.IsNullOrEmpty(token))
        {
            Reply(HubProtocol.Error(HubErrorCodes.BadCommand, "'refresh' needs a \"token\".", cmd.Ref));
            return;
        }

        string? error = await _access.RefreshAsync(token).ConfigureAwait(false);
        if (error is not null)
        {
            Reply(HubProtocol.Error(HubErrorCodes.InvalidToken, error, cmd.Ref));
            return;
        }

        Reply(HubProtocol.Build(new RefreshedMessage { Ref = cmd.Ref }));
        await LeaveRevokedRoomsAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// After a refresh with a narrower token: leaves every room the new token may no longer join, each with a
    /// <c>left</c> notice that says why (no <c>ref</c>: the client did not ask). Nothing from such a room follows.
    /// </summary>
    private async Task LeaveRevokedRoomsAsync()
    {
        List<(string Room, Subscriber Subscriber)> revoked = [];
        if (Volatile.Read(ref _rooms) is not { } rooms)
        {
            return; // in no room
        }

        lock (rooms)
        {
            foreach (var (name, subscriber) in rooms)
            {
                if (!_access!.CanJoin(name))
                {
                    revoked.Add((name, subscriber));
                }
            }

            foreach (var (name, _) in revoked)
            {
                rooms.Remove(name);
            }
        }

        foreach (var (name, subscriber) in revoked)
        {
            await LeaveRoomAsync(name, subscriber).ConfigureAwait(false);
            Reply(HubProtocol.Build(new LeftMessage(name, HubErrorCodes.Forbidden, $"The refreshed token may not join '{name}'.")));
        }
    }

    private bool Forbidden(ClientCommand cmd, string room, bool publish)
    {
        if (_access is null || (publish ? _access.CanPublish(room) : _access.CanJoin(room)))
        {
            return false;
        }

        Reply(HubProtocol.Error(HubErrorCodes.Forbidden, $"Not allowed to {(publish ? "publish to" : "join")} '{room}'.", cmd.Ref));
        return true;
    }

    private async ValueTask LeaveAsync(LeaveCommand cmd)
    {
        if (!TryGetRoom(cmd, cmd.Room, out string name))
        {
            return;
        }

        Subscriber? subscriber = null;
        if (Volatile.Read(ref _rooms) is { } rooms)
        {
            lock (rooms)
            {
                rooms.Remove(name, out subscriber);
            }
        }

        if (subscriber is null)
        {
            Reply(HubProtocol.Error(HubErrorCodes.NotJoined, $"Not a member of '{name}'.", cmd.Ref));
            return;
        }

        await LeaveRoomAsync(name, subscriber).ConfigureAwait(false);
        Reply(HubProtocol.Build(new LeftMessage(name) { Ref = cmd.Ref }));
    }

    private async ValueTask PublishAsync(PublishCommand cmd)
    {
        if (!TryGetRoom(cmd, cmd.Room, out string name))
        {
            return;
        }

        if (Forbidden(cmd, name, publish: true))
        {
            return;
        }

        string? text = cmd.Text;
        int textBytes = text is null ? 0 : Encoding.UTF8.GetByteCount(text);
        if (text is null || text.Length == 0 || textBytes > Options.MaxTextBytes)
        {
            Reply(HubProtocol.Error(HubErrorCodes.InvalidText, $"\"text\" must be a non-empty string of at most {Options.MaxTextBytes} UTF-8 bytes.", cmd.Ref));
            return;
        }

        string? id = cmd.Id;
        if (string.IsNullOrEmpty(id) || id.Length > Options.MaxIdLength)
        {
            Reply(HubProtocol.Error(HubErrorCodes.InvalidId, $"\"id\" must be a non-empty string of at most {Options.MaxIdLength} characters (a client-chosen id; retries reuse it).", cmd.Ref));
            return;
        }

        if ((_publishes ??= PublishRateLimiter.For(Options)) is { } limiter && !limiter.TryTake(out TimeSpan retryAfter))
        {
            Reply(HubProtocol.RateLimited(Options, retryAfter, cmd.Ref));
            return;
        }

        PublishWindow inFlight = InFlight;
        System.Diagnostics.Activity? trace = HubTracing.StartPublish(name, Identity.UserId);
        var publish = new SessionPublish(this, new NewMessage(id, Identity.UserId, Identity.Name, text, Options.Time.GetUtcNow()), name, cmd.Ref, textBytes, trace);
        if (trace is not null)
        {
            System.Diagnostics.Activity.Current = trace.Parent; // the publish goes on without this thread: do not leave it current here
        }

        inFlight.Enter(textBytes);
        if (await PostToRoomAsync(cmd, name, publish).ConfigureAwait(false) is null)
        {
            inFlight.Exit(textBytes); // not queued (the reply said why): never answered by the room
            trace?.Stop();
        }

        await inFlight.WhenOpenAsync().ConfigureAwait(false); // a full window: read nothing more from this connection until acks go out
    }

    /// <summary>A publish of this session: acked (or refused) to it when the room is done with it.</summary>
    private sealed class SessionPublish(HubSession session, NewMessage message, string room, string? reference, int textBytes, System.Diagnostics.Activity? trace)
        : Room.Publish(message, null, trace?.Context ?? default)
    {
        public override void Done(AppendResult? result, Exception? error)
        {
            session.InFlight.Exit(textBytes);
            trace?.SetStatus(error is null ? System.Diagnostics.ActivityStatusCode.Ok : System.Diagnostics.ActivityStatusCode.Error, error?.Message);
            trace?.Stop(); // on the room's worker: the activity was started on the reader's thread, so it is stopped explicitly
            if (error is not null || result is not AppendResult r)
            {
                session.Reply(HubProtocol.Error(HubErrorCodes.Internal, "The message could not be stored; retry with the same id.", reference));
                return;
            }

            session.Reply(HubProtocol.Build(new AckMessage(r.Message.Id, room, r.Message.Offset, r.Duplicate) { Ref = reference }));
        }
    }

    /// <summary>
    /// Up to <paramref name="take"/> messages before <paramref name="beforeOffset"/>, ascending, but no more than
    /// <see cref="HubOptions.MaxHistoryBytes"/> of them (the newest first; <c>more</c> then tells the client to page on).
    /// Read from the store in small chunks, so a request for 500 large messages never holds them all at once.
    /// </summary>
    private async Task<List<StoredMessage>> ReadHistoryPageAsync(string room, long beforeOffset, int take)
    {
        const int Chunk = 50;
        var newestFirst = new List<StoredMessage>();
        long bytes = 0;
        long cursor = beforeOffset;
        while (newestFirst.Count < take)
        {
            int want = Math.Min(Chunk, take - newestFirst.Count);
            IReadOnlyList<StoredMessage> part = await _hub.Store.ReadBeforeAsync(room, cursor, want).ConfigureAwait(false);
            for (int i = part.Count - 1; i >= 0; i--)
            {
                long size = HubProtocol.EstimatedSize(part[i]);
                if (newestFirst.Count > 0 && bytes + size > Options.MaxHistoryBytes)
                {
                    newestFirst.Reverse();
                    return newestFirst;
                }

                newestFirst.Add(part[i]);
                bytes += size;
            }

            if (part.Count < want)
            {
                break;
            }

            cursor = part[0].Offset;
        }

        newestFirst.Reverse();
        return newestFirst;
    }

    private async ValueTask HistoryAsync(HistoryCommand cmd)
    {
        if (!TryGetRoom(cmd, cmd.Room, out string name))
        {
            return;
        }

        if (Forbidden(cmd, name, publish: false))
        {
            return;
        }

        long? before = cmd.Before, limit = cmd.Limit;
        if (before < 0 || limit <= 0)
        {
            Reply(HubProtocol.Error(HubErrorCodes.InvalidArgument, "\"before\" must be a non-negative offset and \"limit\" a positive integer.", cmd.Ref));
            return;
        }

        Room? room = await OpenRoomAsync(cmd, name, create: false).ConfigureAwait(false);
        if (room is null)
        {
            return;
        }

        if (Connection.QueuedBytes > Options.CatchUpQueueLimit)
        {
            // Replies (or live messages) are piling up unread: do not add a page of history to them.
            Reply(HubProtocol.Error(HubErrorCodes.Busy, "Too much is waiting to be sent to this connection; read it, then ask for history again.", cmd.Ref));
            return;
        }

        int take = (int)Math.Min(limit ?? Options.HistoryOnJoin, Options.MaxHistoryPage);
        long beforeOffset = before ?? long.MaxValue;
        List<StoredMessage> page;
        try
        {
            page = await ReadHistoryPageAsync(name, beforeOffset, take).ConfigureAwait(false);
        }
        catch (Exception)
        {
            Reply(HubProtocol.Error(HubErrorCodes.Internal, "History could not be read; try again.", cmd.Ref));
            return;
        }

        RoomState state = room.State;
        long oldest = page.Count > 0 ? page[0].Offset : Math.Min(beforeOffset, state.Head + 1);
        Reply(HubProtocol.Build(new HistoryMessage(name, state.Epoch, [.. page.Select(HubProtocol.HistoryItem)], oldest > state.First) { Ref = cmd.Ref }));
    }
}
