using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Switchboard.Hub.Messages;
using Microsoft.Extensions.Logging.Abstractions;

namespace Switchboard.Hub;

/// <summary>
/// The hub: rooms with durable history, membership and presence. Connections talk to it through
/// <see cref="HubSession"/> (the hub protocol); other endpoints listen to a room with <see cref="ListenAsync"/>
/// and <see cref="PublishAsync"/>.
/// </summary>
public sealed class Hub : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<Room>>> _rooms = new(StringComparer.Ordinal);
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private readonly ILogger _logger;
    private readonly TokenBucket? _newRooms; // hub-wide allowance of rooms created on first use

    private readonly ITimer? _headChecks;

    private readonly bool _ownsMetrics;

    /// <summary>This hub's instruments.</summary>
    public HubMetrics Metrics { get; }

    /// <summary>Background work started by rooms and sessions, awaited at shutdown.</summary>
    internal TaskTracker Background { get; } = new();

    /// <summary>
    /// Creates a hub over <paramref name="store"/>. With a distributed <paramref name="broker"/> it is one node of several
    /// sharing that store: committed messages go through the broker to the other nodes, and come from them.
    /// <paramref name="batching"/> lets the transport write each member's share of a batch at once (see
    /// <see cref="IDeliveryBatching"/>).
    /// </summary>
    public Hub(IMessageStore store, HubOptions? options = null, ILogger? logger = null, IBroker? broker = null, IPresence? presence = null, HubMetrics? metrics = null,
        IDeliveryBatching? batching = null)
    {
        _batching = batching ?? NoDeliveryBatching.Instance;
        Store = store;
        _ownsMetrics = metrics is null;
        Metrics = metrics ?? new HubMetrics();
        Metrics.ObserveKnownRooms(() => KnownRooms);
        Broker = broker ?? InMemoryBroker.Local;
        Presence = presence ?? InMemoryPresence.Local;
        Options = options ?? new HubOptions();
        _logger = logger ?? NullLogger.Instance;
        _newRooms = Options.NewRoomsPerMinute > 0 ? new TokenBucket(Options.NewRoomsPerMinute / 60.0, Options.NewRoomsPerMinute, Options.Time) : null;
        if (Broker.IsDistributed || Presence.IsDistributed)
        {
            _headChecks = Options.Time.CreateTimer(static h => ((Hub)h!).CheckHeads(), this, Options.HeadCheckInterval, Options.HeadCheckInterval);
        }

        _known.Add(DefaultRoom);
        foreach (string room in Options.Rooms)
        {
            _known.Add(room);
        }
    }

    /// <summary>The message store.</summary>
    public IMessageStore Store { get; }

    /// <summary>How rooms bracket a fan-out batch for the transport (handed to every room it opens).</summary>
    private readonly IDeliveryBatching _batching;

    /// <summary>The settings.</summary>
    public HubOptions Options { get; }

    /// <summary>The broker between this hub and the other nodes (a local one when there are none).</summary>
    public IBroker Broker { get; }

    /// <summary>Who is in each room across the nodes (this hub's own when there are no others).</summary>
    public IPresence Presence { get; }

    /// <summary>Asks every open room with live subscribers here to compare its delivered head with the store's.</summary>
    private void CheckHeads()
    {
        foreach (Lazy<Task<Room>> lazy in _rooms.Values)
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully && lazy.Value.Result is { HasLiveSubscribers: true } room)
            {
                room.TryPost(Room.CheckHead.Instance);
            }
        }
    }

    /// <summary>Rooms this server knows (with a history, configured, or created here); bound: <see cref="HubOptions.MaxRooms"/>.</summary>
    public int KnownRooms
    {
        get
        {
            lock (_known)
            {
                return _known.Count;
            }
        }
    }

    private RoomLimitReachedException RoomLimitReached()
    {
        Metrics.RoomCreationRefused();
        return new RoomLimitReachedException($"The server holds {Options.MaxRooms} rooms, its limit");
    }

    /// <summary>Names of the rooms open in memory.</summary>
    public IReadOnlyCollection<string> OpenRooms => [.. _rooms.Keys];

    /// <summary>Loads the names of the rooms that already have a history (so they exist even when rooms are not auto-created).</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        if (Broker.IsDistributed && _control is null)
        {
            _control = await Broker.SubscribeControlAsync(OnControl, cancellationToken).ConfigureAwait(false);
        }

        IReadOnlyList<string> rooms = await Store.ListRoomsAsync(cancellationToken).ConfigureAwait(false);
        lock (_known)
        {
            foreach (string r in rooms)
            {
                _known.Add(r);
            }
        }
    }

    /// <summary>Starts a hub-protocol session for a new connection and sends it the <c>welcome</c>.</summary>
    public HubSession Connect(IHubConnection connection, HubIdentity identity, IHubAccess? access = null)
    {
        var session = new HubSession(this, connection, identity, access);
        _sessions.TryAdd(session, 0);
        connection.Send(HubProtocol.Build(new WelcomeMessage(connection.Id, identity.UserId, identity.Name, Options.Time.GetUtcNow(), HubProtocol.Version)));
        return session;
    }

    /// <summary>Appends a message to a room (creating it if allowed) and fans it out; completes once durable.</summary>
    public async Task<AppendResult> PublishAsync(string room, HubIdentity from, string text, string? id = null)
    {
        var done = new TaskCompletionSource<AppendResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        DateTimeOffset now = Options.Time.GetUtcNow();
        var publish = new Room.Publish(new NewMessage(id ?? MessageIds.New(now), from.UserId, from.Name, text, now),
            (result, error) =>
            {
                if (error is not null)
                {
                    done.TrySetException(error);
                }
                else
                {
                    done.TrySetResult(result!.Value);
                }
            });
        _ = await PostAsync(room, create: true, _ => publish).ConfigureAwait(false) ?? throw new InvalidOperationException($"Room '{room}' does not exist.");
        return await done.Task.ConfigureAwait(false);
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<HubSession, byte> _sessions = new();

    /// <summary>A session ended (called by <see cref="HubSession.DisconnectedAsync"/>).</summary>
    internal void Forget(HubSession session) => _sessions.TryRemove(session, out _);

    /// <summary>
    /// Closes every hub connection of <paramref name="userId"/> on this server with <paramref name="code"/>; returns how many.
    /// </summary>
    public int DisconnectUser(string userId, ushort code, string reason)
    {
        int closed = 0;
        foreach (HubSession session in _sessions.Keys)
        {
            if (session.Identity.UserId == userId)
            {
                session.Connection.Close(code, reason);
                closed++;
            }
        }

        return closed;
    }

    /// <summary>
    /// Deletes <paramref name="room"/>'s history and starts it over in a new epoch: its members here get <c>reset</c>
    /// and continue from offset 0; with a distributed broker the other nodes are told to do the same (and find it on
    /// their next head check if that notice is lost). Null when the room does not exist.
    /// </summary>
    public async Task<RoomState?> ResetRoomAsync(string room)
    {
        if (!RoomExists(room))
        {
            return null;
        }

        var done = new TaskCompletionSource<RoomState>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (await PostAsync(room, create: false, _ => new Room.Reset(done)).ConfigureAwait(false) is null)
        {
            return null;
        }

        RoomState state = await done.Task.ConfigureAwait(false);
        if (Broker.IsDistributed)
        {
            await Broker.PublishControlAsync(new BrokerControl(BrokerControl.ResetRoom, room)).ConfigureAwait(false);
        }

        return state;
    }

    /// <summary>
    /// Closes <paramref name="userId"/>'s hub connections with <see cref="HubCloseCodes.Disconnected"/> here, and asks
    /// the other nodes (with a distributed broker) to close theirs; returns how many were closed here.
    /// </summary>
    public async Task<int> DisconnectUserEverywhereAsync(string userId)
    {
        int here = DisconnectUser(userId, HubCloseCodes.Disconnected, HubCloseCodes.DisconnectedReason);
        if (Broker.IsDistributed)
        {
            await Broker.PublishControlAsync(new BrokerControl(BrokerControl.DisconnectUser, userId)).ConfigureAwait(false);
        }

        return here;
    }

    private IAsyncDisposable? _control;

    /// <summary>Does what another node asked every node to do (this node's own requests come back too: both are idempotent).</summary>
    private void OnControl(BrokerControl control)
    {
        switch (control.Kind)
        {
            case BrokerControl.ResetRoom:
                if (_rooms.TryGetValue(control.Subject, out Lazy<Task<Room>>? lazy) && lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully)
                {
                    lazy.Value.Result.TryPost(new Room.Reset(null)); // rooms not open here read the new state when they open
                }

                break;
            case BrokerControl.DisconnectUser:
                DisconnectUser(control.Subject, HubCloseCodes.Disconnected, HubCloseCodes.DisconnectedReason);
                break;
        }
    }

    /// <summary>True when <paramref name="room"/> has a history or is open here (it may be read without creating it).</summary>
    public bool RoomExists(string room)
    {
        lock (_known)
        {
            if (_known.Contains(room))
            {
                return true;
            }
        }

        return _rooms.ContainsKey(room);
    }

    /// <summary>The rooms known to this server (with a history, configured, or open), sorted.</summary>
    public IReadOnlyList<string> ListRooms()
    {
        var all = new SortedSet<string>(_rooms.Keys, StringComparer.Ordinal);
        lock (_known)
        {
            all.UnionWith(_known);
        }

        return [.. all];
    }

    /// <summary>The members of <paramref name="room"/> (every server's, one entry per user), or null when the room does not exist.</summary>
    public async Task<IReadOnlyList<HubIdentity>?> GetMembersAsync(string room)
    {
        if (!RoomExists(room))
        {
            return null;
        }

        var done = new TaskCompletionSource<IReadOnlyList<HubIdentity>>(TaskCreationOptions.RunContinuationsAsynchronously);
        return await PostAsync(room, create: false, _ => new Room.Members(done)).ConfigureAwait(false) is null ? null : await done.Task.ConfigureAwait(false);
    }

    /// <summary>Up to <paramref name="limit"/> stored messages of <paramref name="room"/> after <paramref name="afterOffset"/>, ascending.</summary>
    public ValueTask<IReadOnlyList<StoredMessage>> ReadAfterAsync(string room, long afterOffset, int limit) =>
        Store.ReadAfterAsync(room, afterOffset, limit);

    /// <summary>The room that always exists (the seed chat's room).</summary>
    public const string DefaultRoom = "general";

    /// <summary>
    /// Starts delivering <paramref name="room"/>'s live messages (from now on, no history) to <paramref name="listener"/>,
    /// which is not a member (no presence). Dispose the result to stop. The room is created if needed and allowed.
    /// </summary>
    public async Task<IAsyncDisposable> ListenAsync(string room, IRoomListener listener)
    {
        var subscriber = new Subscriber(listener);
        while (true)
        {
            var started = new TaskCompletionSource<(long Cursor, string Epoch)?>(TaskCreationOptions.RunContinuationsAsynchronously);
            Room opened = (await PostAsync(room, create: true, r => new Room.JoinStart(subscriber, r.State.Head, null, null, started)).ConfigureAwait(false)) ??
                throw new InvalidOperationException($"Room '{room}' does not exist.");
            long? cursor = (await started.Task.ConfigureAwait(false))?.Cursor;
            bool posted = true;
            while (cursor is long c && posted)
            {
                // Rare: the room moved past the cache between the snapshot and the join; go live from the store's head.
                // (Not yet live, a listener does not keep the room open: if it closed meanwhile, start over.)
                var live = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                posted = opened.TryPost(new Room.GoLive(subscriber, opened.State.Head, null, live));
                cursor = posted && await live.Task.ConfigureAwait(false) ? null : c;
            }

            if (posted)
            {
                return new Unsubscriber(opened, subscriber);
            }
        }
    }

    private sealed class Unsubscriber(Room room, Subscriber subscriber) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (room.TryPost(new Room.Leave(subscriber, done))) // a room with a live subscriber does not close; if stopped, nothing to leave
            {
                await done.Task.ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Maintenance, run periodically by the server: applies each open room's retention policy now, and closes (drops
    /// from memory) the rooms that have had no members and no activity for <see cref="HubOptions.IdleRoomRelease"/>.
    /// </summary>
    public async Task ApplyRetentionAsync()
    {
        foreach (var (name, lazy) in _rooms)
        {
            Room room = await lazy.Value.ConfigureAwait(false);
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (room.TryPost(new Room.Trim(done)))
            {
                await done.Task.ConfigureAwait(false);
            }

            if (room.IsClosed)
            {
                Forget(name, lazy);
            }
        }
    }

    /// <summary>
    /// The room, opening it; null when it does not exist and may not be created. A room that closed for being idle is
    /// replaced by a fresh one opened from the store (the closed one had nothing queued and nothing unwritten).
    /// </summary>
    internal async Task<Room?> GetRoomAsync(string name, bool create, TokenBucket? creations = null)
    {
        while (true)
        {
            bool created = false;
            if (!_rooms.ContainsKey(name))
            {
                bool exists;
                lock (_known)
                {
                    exists = _known.Contains(name);
                }

                if (!exists && !(create && Options.AutoCreateRooms))
                {
                    return null;
                }

                if (!exists)
                {
                    // A new room (memory now, disk soon): within the server's total and the connection's and the
                    // server's allowances only. It counts as known from here (the total is checked again as it is
                    // added, so concurrent creations cannot pass it together).
                    if (Options.MaxRooms > 0 && KnownRooms >= Options.MaxRooms)
                    {
                        throw RoomLimitReached();
                    }

                    if (creations is not null && !creations.TryTake(out TimeSpan retry))
                    {
                        Metrics.RoomCreationRefused();
                        throw new RoomCreationRefusedException(retry, $"This connection created {Options.NewRoomsPerConnectionPerMinute} new rooms in the last minute");
                    }

                    if (_newRooms is not null && !_newRooms.TryTake(out retry))
                    {
                        Metrics.RoomCreationRefused();
                        throw new RoomCreationRefusedException(retry, $"The server created {Options.NewRoomsPerMinute} new rooms in the last minute");
                    }

                    lock (_known)
                    {
                        if (Options.MaxRooms > 0 && _known.Count >= Options.MaxRooms && !_known.Contains(name))
                        {
                            throw RoomLimitReached();
                        }

                        created = _known.Add(name);
                    }
                }
            }

            Lazy<Task<Room>> lazy = _rooms.GetOrAdd(name, static (n, hub) => new Lazy<Task<Room>>(
                () => Room.OpenAsync(n, hub.Store, hub.Options, hub._logger, hub.Broker, hub.Presence, hub.Background, hub.Metrics, hub._batching)), this);
            Room room;
            try
            {
                room = await lazy.Value.ConfigureAwait(false);
            }
            catch
            {
                _rooms.TryRemove(new KeyValuePair<string, Lazy<Task<Room>>>(name, lazy)); // let a later attempt retry
                if (created)
                {
                    lock (_known)
                    {
                        _known.Remove(name); // it was never opened: it does not count
                    }
                }

                throw;
            }

            if (!room.IsClosed)
            {
                return room;
            }

            Forget(name, lazy);
        }
    }

    /// <summary>
    /// Posts <paramref name="work"/> to the room if it is open here already — every publish but a room's first — with
    /// nothing allocated; null when it is not (then <see cref="PostAsync"/> opens it).
    /// </summary>
    internal Room? TryPostToOpenRoom(string name, Room.Work work) =>
        _rooms.TryGetValue(name, out Lazy<Task<Room>>? lazy) && lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully
        && lazy.Value.Result is { IsClosed: false } room && room.TryPost(work) ? room : null;

    /// <summary>Posts the work made for the room (opening it as <see cref="GetRoomAsync"/> does), again on a fresh room if it closed meanwhile.</summary>
    internal async Task<Room?> PostAsync(string name, bool create, Func<Room, Room.Work> work, TokenBucket? creations = null)
    {
        while (true)
        {
            Room? room = await GetRoomAsync(name, create, creations).ConfigureAwait(false);
            if (room is null || room.TryPost(work(room)))
            {
                return room;
            }
        }
    }

    /// <summary>Drops a closed room from memory; it still exists (its history is in the store).</summary>
    private void Forget(string name, Lazy<Task<Room>> lazy)
    {
        lock (_known)
        {
            _known.Add(name); // opened again on demand even where rooms are not created on first use
        }

        if (_rooms.TryRemove(new KeyValuePair<string, Lazy<Task<Room>>>(name, lazy)))
        {
            Interlocked.Increment(ref _roomsClosed);
        }
    }

    private int _roomsClosed;

    /// <summary>How many idle rooms were closed and dropped from memory so far.</summary>
    internal int RoomsClosed => Volatile.Read(ref _roomsClosed);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _headChecks?.Dispose();
        if (_ownsMetrics)
        {
            Metrics.Dispose();
        }

        var workers = new List<Task>();
        foreach (var lazy in _rooms.Values)
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully)
            {
                lazy.Value.Result.Stop();
                workers.Add(lazy.Value.Result.Completion);
            }
        }

        // Every room's worker ends (its queued appends done, its broker subscription gone), and every catch-up,
        // recovery and announcement they started, before the store and the broker close.
        try
        {
            await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("Rooms still busy after 30 s at shutdown; closing the store under them");
        }

        if (!await Background.WhenAllAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false))
        {
            _logger.LogWarning("{Count} background tasks still running after 10 s at shutdown", Background.Count);
        }
        if (_control is not null)
        {
            await _control.DisposeAsync().ConfigureAwait(false);
        }

        await Presence.DisposeAsync().ConfigureAwait(false); // it may share the broker's connection
        await Broker.DisposeAsync().ConfigureAwait(false);
        await Store.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>A room was not created: the connection or the server is over its allowance of new rooms.</summary>
public sealed class RoomCreationRefusedException(TimeSpan retryAfter, string message) : Exception(message)
{
    /// <summary>When the next new room will be allowed.</summary>
    public TimeSpan RetryAfter { get; } = retryAfter;
}
