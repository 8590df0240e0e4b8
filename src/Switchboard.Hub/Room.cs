using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Switchboard.Hub.Messages;

namespace Switchboard.Hub;

/// <summary>
/// A stored message of a room as it is delivered live: its encodings are each built at most once, however many
/// connections receive it — the hub protocol's <c>message</c> event, and one encoding of a listener's own
/// (<see cref="Encoded{T}"/>; e.g. the server's seed chat contract).
/// </summary>
public sealed class RoomMessage
{
    private readonly string _room;
    private OutboundMessage? _hub;
    private object? _encoder;
    private object? _encoded;

    internal RoomMessage(string room, StoredMessage stored)
    {
        _room = room;
        Stored = stored;
    }

    /// <summary>The message.</summary>
    public StoredMessage Stored { get; }

    /// <summary>The hub protocol's <c>message</c> event.</summary>
    public OutboundMessage Hub => _hub ??= HubProtocol.Message(_room, Stored);

    /// <summary>
    /// The message encoded by <paramref name="encoder"/>, built by the first listener that asks and shared with every
    /// other listener using the same encoder (called on the room's worker only, so no lock).
    /// </summary>
    public T Encoded<T>(Func<StoredMessage, T> encoder) where T : class
    {
        if (!ReferenceEquals(_encoder, encoder))
        {
            _encoder = encoder;
            _encoded = encoder(Stored);
        }

        return (T)_encoded!;
    }
}

/// <summary>
/// Receives a room's live messages without being a member (no presence, no history): the server's seed chat
/// endpoint (/ws) is one. <see cref="Deliver"/> runs on the room's worker, in offset order, and must not block.
/// </summary>
public interface IRoomListener
{
    /// <summary>One live message.</summary>
    void Deliver(RoomMessage message);
}

/// <summary>Someone receiving a room's live messages: a hub session (a member), or a listener.</summary>
internal sealed class Subscriber
{
    /// <summary>A member: <paramref name="recover"/> replays what it missed after falling behind (its session does that).</summary>
    public Subscriber(IHubConnection connection, HubIdentity identity, Func<Room, Subscriber, long, string, Task> recover)
    {
        Connection = connection;
        Identity = identity;
        _recover = recover;
    }

    private readonly Func<Room, Subscriber, long, string, Task>? _recover;

    public Subscriber(IRoomListener listener) => Listener = listener;

    /// <summary>A member's connection (null for a listener).</summary>
    public IHubConnection? Connection { get; }

    /// <summary>Who the member is (null for a listener).</summary>
    public HubIdentity? Identity { get; }

    /// <summary>True for a member (a hub session), false for a listener.</summary>
    public bool IsMember => Identity is not null;

    /// <summary>Replays from <paramref name="lastOffset"/> (of <paramref name="epoch"/>) once the connection has drained, then goes live again.</summary>
    public Task RecoverAsync(Room room, long lastOffset, string epoch) => _recover!(room, this, lastOffset, epoch);

    public IRoomListener? Listener { get; }

    private readonly Lock _catchUpGate = new();

    /// <summary>Set by the room worker when the subscriber left (<see cref="Remove"/>); a pending catch-up then stops.</summary>
    public volatile bool Removed;

    /// <summary>Marks the subscriber gone; once this returns, no catch-up send for it is in progress or will follow.</summary>
    public void Remove()
    {
        lock (_catchUpGate)
        {
            Removed = true;
        }
    }

    /// <summary>
    /// Sends a catch-up message (history, a gap, <c>lagging</c>) unless the subscriber has left: so nothing from a room
    /// follows the <c>left</c> reply, which is sent after <see cref="Remove"/>. False when it has left.
    /// </summary>
    public bool SendIfMember(OutboundMessage message)
    {
        lock (_catchUpGate)
        {
            if (Removed)
            {
                return false;
            }

            Connection!.Send(message);
            return true;
        }
    }

    /// <summary>The last offset handed to this subscriber's connection (worker-owned while live).</summary>
    public long LastOffset;

    /// <summary>Sends one live message; false when a hub member's connection is too far behind (seed clients are never dropped here).</summary>
    public bool Deliver(RoomMessage m, long liveQueueLimit)
    {
        if (Listener is not null)
        {
            Listener.Deliver(m);
            return true;
        }

        if (!Connection!.TrySendLive(m.Hub, liveQueueLimit))
        {
            return false;
        }

        LastOffset = m.Stored.Offset;
        return true;
    }
}

/// <summary>
/// One room. Every change to the room (publish, join, go-live, leave) goes through one worker loop, which makes
/// offsets, fan-out order and the join seam simple to reason about: consecutive publishes are appended to the
/// store in one batch, acknowledged once durable, and fanned out in offset order to the live subscribers.
/// </summary>
internal sealed class Room
{
    private readonly IMessageStore _store;
    private readonly HubOptions _options;
    private readonly ILogger _logger;
    private readonly IBroker _broker;
    private readonly IPresence _presence;
    private IAsyncDisposable? _subscription; // to the broker's messages of this room (distributed brokers only)
    private IAsyncDisposable? _presenceSubscription; // to the room's presence changes on other nodes (distributed presence only)
    private int _localConnections; // hub sessions connected to this node that are in the room (the members list also has other nodes')
    private readonly Channel<Work> _work = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _gate = new(); // posting vs. closing: no work is ever queued to a room that closed
    private bool _closed;
    private int _pending; // queued, not yet taken by the worker (the channel cannot count with a single reader)

    /// <summary>Work items queued and not yet taken by the worker (read outside the worker: a snapshot).</summary>
    internal int Pending => Volatile.Read(ref _pending);

    // Owned by the worker loop.
    private readonly List<Subscriber> _live = [];
    private readonly Dictionary<string, Member> _members = new(StringComparer.Ordinal);
    private readonly RecentMessages _recent;
    private int _cachedCount;
    private DateTimeOffset _lastActive;
    private bool _activeSincePass; // any work since the last maintenance pass (no clock read per work item)
    private RoomState _state; // Head: the last offset delivered here, in order (the store may be ahead while a hole is open)

    // Messages committed (here or by another node) past a hole in the offsets, held until the hole is filled.
    private readonly SortedDictionary<long, Held> _held = [];
    private ITimer? _holeTimer;
    private Task _worker = Task.CompletedTask;

    private sealed class Held(StoredMessage message)
    {
        public StoredMessage Message { get; } = message;
        public List<(Publish Publish, AppendResult Result)>? Acks;
    }

    private readonly TaskTracker _background;
    private readonly HubMetrics _metrics;

    // Appends issued to the store and not yet fanned out, oldest first (worker only). A store that applies a room's
    // appends in issue order gets up to MaxAppendsInFlight of them: the next batch waits in the store's queue and joins
    // its next commit, instead of waiting here for the previous commit to come back first.
    private readonly Queue<InFlightAppend> _appends = new();
    private readonly int _maxAppendsInFlight;
    private readonly Action _appendCompleted;
    private const int MaxAppendsInFlight = 2;

    private sealed class InFlightAppend(Publish[] items, Task<IReadOnlyList<AppendResult>> task, long started, System.Diagnostics.Activity? activity)
    {
        public Publish[] Items { get; } = items;
        public Task<IReadOnlyList<AppendResult>> Task { get; } = task;
        public long Started { get; } = started;
        public System.Diagnostics.Activity? Activity { get; } = activity;
    }

    private readonly IDeliveryBatching _batching;

    private Room(string name, IMessageStore store, HubOptions options, ILogger logger, IBroker broker, IPresence presence, TaskTracker background, HubMetrics metrics,
        IDeliveryBatching batching)
    {
        _batching = batching;
        _metrics = metrics;
        _background = background;
        Name = name;
        Kind = RoomKinds.Of(name, options);
        _store = store;
        _options = options;
        _logger = logger;
        _broker = broker;
        _presence = presence;
        _lastActive = options.Time.GetUtcNow();
        _maxAppendsInFlight = store.AppendsInIssueOrder ? MaxAppendsInFlight : 1;
        _recent = new RecentMessages(options.RecentCacheSize, options.RecentCacheBytes);
        _appendCompleted = () => _work.Writer.TryWrite(AppendCompleted.Instance);
    }

    public string Name { get; }

    /// <summary>What kind of room this is, for the metrics' room_kind tag.</summary>
    public RoomKind Kind { get; }

    /// <summary>The state as of the last change (read outside the worker: a snapshot).</summary>
    public RoomState State => _state;

    /// <summary>Messages in the recent cache (read outside the worker: a snapshot).</summary>
    internal int CachedCount => Volatile.Read(ref _cachedCount);

    /// <summary>Bytes the recent cache's ring takes (tests; read outside the worker: a snapshot).</summary>
    internal int CacheCapacity => _recent.Capacity;

    /// <summary>
    /// Opens a room. With a distributed broker the subscription starts before the store's head is read, so nothing
    /// committed by another node falls between the two: what arrives meanwhile waits in the work queue, and the worker
    /// drops what the head already covers.
    /// </summary>
    public static async Task<Room> OpenAsync(string name, IMessageStore store, HubOptions options, ILogger logger, IBroker? broker = null, IPresence? presence = null,
        TaskTracker? background = null, HubMetrics? metrics = null, IDeliveryBatching? batching = null)
    {
        var room = new Room(name, store, options, logger, broker ?? InMemoryBroker.Local, presence ?? InMemoryPresence.Local, background ?? new TaskTracker(), metrics ?? new HubMetrics(),
            batching ?? NoDeliveryBatching.Instance);
        await room.SubscribeAsync().ConfigureAwait(false);
        try
        {
            room._state = await store.OpenRoomAsync(name).ConfigureAwait(false);
            if (room._presence.IsDistributed)
            {
                // As with messages: the feed first, then the snapshot (the worker applies both, in that queue order).
                room._presenceSubscription = await room._presence.SubscribeAsync(name, c => room.TryPost(new RemotePresence(c))).ConfigureAwait(false);
                await room.ReconcilePresenceAsync().ConfigureAwait(false);
            }
        }
        catch
        {
            await room.UnsubscribeAsync().ConfigureAwait(false);
            throw;
        }

        room._metrics.RoomOpened(room.Kind);
        room._worker = Task.Run(room.RunAsync);
        return room;
    }

    /// <summary>Completes when the worker has stopped (after <see cref="Stop"/> or an idle close).</summary>
    internal Task Completion => _worker;

    private async Task SubscribeAsync()
    {
        if (!_broker.IsDistributed || _subscription is not null)
        {
            return;
        }

        try
        {
            _subscription = await _broker.SubscribeAsync(Name, m => TryPost(new Remote(m))).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The broker is down: the periodic head check delivers meanwhile (slower), and retries the subscription.
            _logger.LogWarning(ex, "Room {Room}: cannot subscribe to the broker; catching up from the store until it is back", Name);
        }
    }

    private async Task UnsubscribeAsync()
    {
        IAsyncDisposable? subscription = Interlocked.Exchange(ref _subscription, null);
        if (subscription is not null)
        {
            try
            {
                await subscription.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _logger.LogDebug(ex, "Room {Room}: unsubscribing failed", Name);
            }
        }
    }

    private sealed class Member(HubIdentity identity)
    {
        public HubIdentity Identity { get; } = identity;
        public HashSet<string> Connections { get; } = [];
    }

    // ---------------------------------------------------------------- work items

    internal abstract class Work;

    /// <summary>A message to store and deliver; <see cref="Done"/> is called once with its result or failure, on the worker.</summary>
    internal class Publish(NewMessage message, Action<AppendResult?, Exception?>? done = null, System.Diagnostics.ActivityContext trace = default) : Work
    {
        public NewMessage Message { get; } = message;

        /// <summary>Calls the callback given; a subclass carries its own state instead (no closure per publish).</summary>
        public virtual void Done(AppendResult? result, Exception? error) => done?.Invoke(result, error);

        /// <summary>The publish's trace, when one is recorded: the commit links to it and the fan-out is its child.</summary>
        public System.Diagnostics.ActivityContext Trace { get; } = trace;
    }

    internal sealed class JoinStart(Subscriber subscriber, long? since, string? epoch, string? reference, TaskCompletionSource<(long Cursor, string Epoch)?> done) : Work
    {
        public Subscriber Subscriber { get; } = subscriber;
        public long? Since { get; } = since;
        public string? Epoch { get; } = epoch;
        public string? Ref { get; } = reference;

        /// <summary>Null when live at once, else the cursor to catch up from (and the epoch it counts in).</summary>
        public TaskCompletionSource<(long Cursor, string Epoch)?> Done { get; } = done;
    }

    /// <summary>Switch a subscriber to live at <paramref name="cursor"/>; false when the cache does not reach back to it, or the cursor is of another epoch (null: any).</summary>
    internal sealed class GoLive(Subscriber subscriber, long cursor, string? epoch, TaskCompletionSource<bool> done) : Work
    {
        public Subscriber Subscriber { get; } = subscriber;
        public long Cursor { get; } = cursor;
        public string? Epoch { get; } = epoch;
        public TaskCompletionSource<bool> Done { get; } = done;
    }

    internal sealed class Leave(Subscriber subscriber, TaskCompletionSource done) : Work
    {
        public Subscriber Subscriber { get; } = subscriber;
        public TaskCompletionSource Done { get; } = done;
    }

    /// <summary>Asks for the room's members (every node's, one entry per user).</summary>
    internal sealed class Members(TaskCompletionSource<IReadOnlyList<HubIdentity>> done) : Work
    {
        public TaskCompletionSource<IReadOnlyList<HubIdentity>> Done { get; } = done;
    }

    internal sealed class Trim(TaskCompletionSource done) : Work
    {
        public TaskCompletionSource Done { get; } = done;
    }

    /// <summary>A message another node committed, from the broker.</summary>
    internal sealed class Remote(StoredMessage message) : Work
    {
        public StoredMessage Message { get; } = message;
    }

    /// <summary>A connection entered or left the room on another node.</summary>
    internal sealed class RemotePresence(PresenceChange change) : Work
    {
        public PresenceChange Change { get; } = change;
    }

    /// <summary>Read the store for the messages missing before the held ones (a hole the broker did not fill in time).</summary>
    internal sealed class FillHoles : Work;

    /// <summary>An append in flight completed: fan out what has come back, in issue order (not counted as pending).</summary>
    private sealed class AppendCompleted : Work
    {
        public static readonly AppendCompleted Instance = new();
    }

    /// <summary>
    /// Delete the room's history in the store and start a new epoch (<paramref name="done"/> set), or (null) only reload
    /// the state another node's reset left in the store.
    /// </summary>
    internal sealed class Reset(TaskCompletionSource<RoomState>? done) : Work
    {
        public TaskCompletionSource<RoomState>? Done { get; } = done;
    }

    /// <summary>Compare the store's head with what was delivered here: broker traffic lost at the end of a burst leaves no hole to notice.</summary>
    internal sealed class CheckHead : Work
    {
        public static CheckHead Instance { get; } = new();
    }

    private void AddLive(Subscriber s)
    {
        _live.Add(s);
        Volatile.Write(ref _liveCount, _live.Count);
    }

    private void RemoveLive(Subscriber s)
    {
        _live.Remove(s);
        Volatile.Write(ref _liveCount, _live.Count);
    }

    /// <summary>True when the room has live subscribers (worth a head check).</summary>
    internal bool HasLiveSubscribers => Volatile.Read(ref _liveCount) > 0;

    private int _liveCount;

    /// <summary>
    /// Queues work for the worker; false when the room has closed (<see cref="IsClosed"/>): nothing was queued, and the
    /// caller gets the room again from the hub, which opens a fresh one from the store.
    /// </summary>
    public bool TryPost(Work work)
    {
        lock (_gate)
        {
            if (_closed || !_work.Writer.TryWrite(work))
            {
                return false;
            }

            Interlocked.Increment(ref _pending);
            return true;
        }
    }

    /// <summary>True once the room has closed for being idle (<see cref="HubOptions.IdleRoomRelease"/>), or stopped.</summary>
    public bool IsClosed
    {
        get
        {
            lock (_gate)
            {
                return _closed;
            }
        }
    }

    public void Stop()
    {
        lock (_gate)
        {
            _closed = true;
        }

        if (_work.Writer.TryComplete())
        {
            _metrics.RoomClosed(Kind);
        }
    }

    private async Task RunAsync()
    {
        var batch = new List<Publish>();
        ChannelReader<Work> reader = _work.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out Work? work))
            {
                if (work is not AppendCompleted)
                {
                    Interlocked.Decrement(ref _pending);
                    _activeSincePass |= work is not (Trim or CheckHead or FillHoles or Remote or RemotePresence);
                }

                try
                {
                    if (work is AppendCompleted)
                    {
                        CompleteReady();
                        continue;
                    }

                    if (work is Publish p)
                    {
                        batch.Add(p);
                        if (batch.Count >= _options.MaxPublishBatch)
                        {
                            await SubmitAsync(batch).ConfigureAwait(false);
                        }

                        continue;
                    }

                    if (batch.Count > 0)
                    {
                        await SubmitAsync(batch).ConfigureAwait(false);
                    }

                    await CompleteAllAsync().ConfigureAwait(false); // everything else sees every append fanned out
                    await HandleAsync(work).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    _logger.LogError(ex, "Room {Room}: work item failed", Name);
                }
            }

            try
            {
                if (batch.Count > 0)
                {
                    await SubmitAsync(batch).ConfigureAwait(false);
                }
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Room {Room}: append failed", Name);
            }
        }

        try
        {
            await CompleteAllAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Room {Room}: append failed", Name);
        }

        // Closed (idle) or stopped: nothing more arrives for this room object.
        _holeTimer?.Dispose();
        await UnsubscribeAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _presenceSubscription, null) is { } presence)
        {
            await presence.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Issues the batch to the store. With the room's appends in flight at their limit, the oldest is completed first;
    /// a batch the store completed at once (and nothing older in flight) is fanned out at once.
    /// </summary>
    private async Task SubmitAsync(List<Publish> batch)
    {
        if (_appends.Count >= _maxAppendsInFlight)
        {
            await ((Task)_appends.Peek().Task).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            CompleteReady();
        }

        Publish[] items = [.. batch];
        batch.Clear();
        var messages = new NewMessage[items.Length];
        for (int i = 0; i < items.Length; i++)
        {
            messages[i] = items[i].Message;
        }

        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        System.Diagnostics.Activity? ambient = System.Diagnostics.Activity.Current;
        System.Diagnostics.Activity? activity = HubTracing.StartAppend(Name, items);
        if (activity is not null)
        {
            System.Diagnostics.Activity.Current = ambient; // appends overlap: none is the parent of what follows
        }
        Task<IReadOnlyList<AppendResult>> task;
        try
        {
            task = _store.AppendAsync(Name, messages).AsTask();
        }
        catch (Exception ex)
        {
            task = Task.FromException<IReadOnlyList<AppendResult>>(ex);
        }

        _appends.Enqueue(new InFlightAppend(items, task, started, activity));
        if (task.IsCompleted)
        {
            CompleteReady(); // at once when nothing older is in flight; else when that one is
            return;
        }

        task.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_appendCompleted);
    }

    /// <summary>Waits for every append in flight and fans each out, oldest first.</summary>
    private async Task CompleteAllAsync()
    {
        while (_appends.TryPeek(out InFlightAppend? oldest))
        {
            await ((Task)oldest.Task).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            CompleteReady();
        }
    }

    /// <summary>
    /// Fans out the appends that have come back, oldest first, stopping at the first still in flight. All of them in one
    /// delivery batch: appends that one commit completed together cost one write per member, as one append would.
    /// </summary>
    private void CompleteReady()
    {
        if (!_appends.TryPeek(out InFlightAppend? oldest) || !oldest.Task.IsCompleted)
        {
            return;
        }

        _batching.Begin();
        try
        {
            while (_appends.TryPeek(out oldest) && oldest.Task.IsCompleted)
            {
                CompleteOldest(_appends.Dequeue());
            }
        }
        finally
        {
            _batching.End();
        }
    }

    private void CompleteOldest(InFlightAppend append)
    {
        Publish[] items = append.Items;
        if (!append.Task.IsCompletedSuccessfully)
        {
            Exception ex = append.Task.Exception?.InnerException ?? new OperationCanceledException("The append was canceled.");
            append.Activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, ex.Message);
            append.Activity?.Stop();
            _logger.LogError(ex, "Room {Room}: storing {Count} messages failed", Name, items.Length);
            foreach (Publish p in items)
            {
                p.Done(null, ex);
            }

            return;
        }

        IReadOnlyList<AppendResult> results = append.Task.Result;
        append.Activity?.Stop(); // the commit only: the fan-out and the acks that follow are the publishes' own
        int duplicates = 0;
        for (int i = 0; i < results.Count; i++)
        {
            duplicates += results[i].Duplicate ? 1 : 0;
        }

        _metrics.Stored(Kind, items.Length - duplicates, duplicates, System.Diagnostics.Stopwatch.GetElapsedTime(append.Started).TotalSeconds);
        for (int i = 0; i < items.Length; i++)
        {
            AppendResult r = results[i];
            if (r.Duplicate)
            {
                items[i].Done(r, null);
                continue;
            }

            if (_broker.IsDistributed)
            {
                _background.Track(PublishToBrokerAsync(r.Message));
            }

            Accept(r.Message, items[i], r);
        }
    }

    private async Task PublishToBrokerAsync(StoredMessage message)
    {
        try
        {
            await _broker.PublishAsync(Name, message).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogDebug(ex, "Room {Room}: broker publish failed; other nodes fill the hole from the store", Name);
        }
    }

    /// <summary>
    /// Takes a committed message, from this node's own append or from another node through the broker, and delivers it
    /// in offset order: the next offset goes out at once (and with it whatever was held behind it), an offset already
    /// delivered is dropped, and one past a hole is held until the hole is filled — by the broker, or from the store
    /// after <see cref="HubOptions.HoleWait"/>. So members see every offset once, in order, whichever node committed it.
    /// The publisher's ack goes out once its message was delivered here (the "message before ack" order).
    /// </summary>
    private void Accept(StoredMessage message, Publish? publish = null, AppendResult result = default)
    {
        if (message.Offset <= _state.Head)
        {
            publish?.Done(result, null);
            return;
        }

        if (message.Offset == _state.Head + 1)
        {
            Deliver(message, publish?.Trace ?? default);
            publish?.Done(result, null);
            DeliverHeld();
            return;
        }

        if (!_held.TryGetValue(message.Offset, out Held? held))
        {
            held = new Held(message);
            _held[message.Offset] = held;
        }

        if (publish is not null)
        {
            (held.Acks ??= []).Add((publish, result));
        }

        ArmHoleFill();
    }

    private void DeliverHeld()
    {
        while (_held.Count > 0)
        {
            KeyValuePair<long, Held> first = _held.First();
            if (first.Key > _state.Head + 1)
            {
                return;
            }

            _held.Remove(first.Key);
            if (first.Key == _state.Head + 1)
            {
                Deliver(first.Value.Message);
            }

            foreach (var (publish, result) in first.Value.Acks ?? [])
            {
                publish.Done(result, null);
            }
        }

        _holeTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    private void ArmHoleFill()
    {
        _metrics.HoleDetected();
        _holeTimer ??= _options.Time.CreateTimer(static s => ((Room)s!).TryPost(new FillHoles()), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _holeTimer.Change(_options.HoleWait, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Reads what is missing after the delivered head from the store and delivers it (and what was held behind it).</summary>
    private async Task CatchUpFromStoreAsync(long upTo)
    {
        while (_state.Head < upTo)
        {
            IReadOnlyList<StoredMessage> page = await _store.ReadAfterAsync(Name, _state.Head, _options.CatchUpPageSize).ConfigureAwait(false);
            if (page.Count == 0)
            {
                break;
            }

            if (page[0].Offset > _state.Head + 1)
            {
                // Removed by retention meanwhile: nothing to deliver there; members resuming later get a gap notice.
                _state = _state with { Head = page[0].Offset - 1 };
            }

            _metrics.HoleFilled(page.Count);
            _batching.Begin();
            try
            {
                foreach (StoredMessage m in page)
                {
                    Accept(m);
                }
            }
            finally
            {
                _batching.End();
            }
        }

        DeliverHeld();
        if (_held.Count > 0)
        {
            ArmHoleFill(); // not in the store yet (it can only be a moment behind the broker): look again
        }
    }

    /// <summary>Delivers the next message in offset order to every live subscriber here.</summary>
    private void Deliver(StoredMessage stored, System.Diagnostics.ActivityContext trace = default)
    {
        using System.Diagnostics.Activity? fanout = HubTracing.StartFanout(Name, stored.Offset, trace, _live.Count);
        _metrics.Delivered(Kind, _live.Count);
        _state = _state with { Head = stored.Offset };
        var message = new RoomMessage(Name, stored);
        Remember(message);
        List<Subscriber>? lagging = null;
        foreach (Subscriber s in _live)
        {
            if (stored.Offset <= s.LastOffset)
            {
                continue; // it read this one from the store while catching up, ahead of this node
            }

            if (!s.Deliver(message, _options.LiveQueueLimit))
            {
                (lagging ??= []).Add(s);
            }
        }

        if (lagging is not null)
        {
            DropLagging(lagging);
        }
    }

    private void Remember(RoomMessage message)
    {
        _recent.Add(message.Stored);
        Volatile.Write(ref _cachedCount, _recent.Count);
    }

    /// <summary>Drops from the cache what retention removed from the history.</summary>
    private void PruneCache()
    {
        _recent.DropBefore(_state.First);
        Volatile.Write(ref _cachedCount, _recent.Count);
    }

    /// <summary>
    /// Closes a room nobody is in and nothing happened in for <see cref="HubOptions.IdleRoomRelease"/>: its cache and
    /// state leave memory (the hub drops it; the next use opens it again from the store). Runs on the worker and decides
    /// under the post gate, so nothing is queued or in flight once it closes: the store has everything this room wrote.
    /// </summary>
    private void CloseIfIdle()
    {
        DateTimeOffset now = _options.Time.GetUtcNow();
        if (_activeSincePass)
        {
            _lastActive = now; // idle time counts from the last pass that found activity
            _activeSincePass = false;
        }

        if (_live.Count > 0 || _localConnections > 0 || now - _lastActive < _options.IdleRoomRelease)
        {
            return;
        }

        lock (_gate)
        {
            if (Volatile.Read(ref _pending) > 0)
            {
                return; // work arrived meanwhile: not idle
            }

            _closed = true;
        }

        _recent.Clear();
        Volatile.Write(ref _cachedCount, 0);
        if (_work.Writer.TryComplete())
        {
            _metrics.RoomClosed(Kind);
        }
    }

    /// <summary>True when the recent cache holds every message after <paramref name="cursor"/> (or there are none).</summary>
    private bool CacheCovers(long cursor) =>
        cursor >= _state.Head || (_recent.TryGetOldest(out long oldest) && oldest <= cursor + 1);

    /// <summary>Sends the cached messages after <paramref name="cursor"/>; false when the connection fell behind meanwhile.</summary>
    private bool SendCachedAfter(Subscriber s, long cursor)
    {
        s.LastOffset = cursor;
        foreach (StoredMessage m in _recent.After(cursor))
        {
            if (!s.Deliver(new RoomMessage(Name, m), _options.LiveQueueLimit))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Takes members whose connections fell behind off the live stream; each replays from its last delivered
    /// offset once its connection has drained (<see cref="Subscriber.RecoverAsync"/>), instead of being cut off.
    /// </summary>
    private void DropLagging(List<Subscriber> lagging)
    {
        foreach (Subscriber s in lagging)
        {
            RemoveLive(s);
            _metrics.Lagging(Kind);
            _background.Track(s.RecoverAsync(this, s.LastOffset, _state.Epoch));
        }
    }

    private async Task HandleAsync(Work work)
    {
        switch (work)
        {
            case JoinStart j:
                HandleJoinStart(j);
                break;
            case GoLive g:
                if (g.Subscriber.Removed)
                {
                    g.Done.TrySetResult(true); // left while catching up: nothing to do
                }
                else if (g.Epoch is not null && g.Epoch != _state.Epoch)
                {
                    g.Done.TrySetResult(false); // the history was deleted while it caught up: it starts over from the new epoch
                }
                else if (CacheCovers(g.Cursor))
                {
                    if (SendCachedAfter(g.Subscriber, g.Cursor))
                    {
                        AddLive(g.Subscriber);
                    }
                    else
                    {
                        DropLagging([g.Subscriber]);
                    }

                    g.Done.TrySetResult(true);
                }
                else
                {
                    g.Done.TrySetResult(false);
                }

                break;
            case Leave l:
                HandleLeave(l.Subscriber);
                l.Done.TrySetResult();
                break;
            case Remote r:
                Accept(r.Message);
                break;
            case Members m:
                m.Done.TrySetResult([.. _members.Values.Select(x => x.Identity)]);
                break;
            case RemotePresence p:
                ApplyRemotePresence(p.Change);
                break;
            case FillHoles:
                if (_held.Count > 0)
                {
                    await CatchUpFromStoreAsync(_held.Keys.First() - 1).ConfigureAwait(false);
                }

                break;
            case Reset r:
                await ResetAsync(r).ConfigureAwait(false);
                break;
            case CheckHead:
                // Messages first (the store is the truth), then what depends on the broker being reachable.
                RoomState stored = await _store.OpenRoomAsync(Name).ConfigureAwait(false);
                if (stored.Epoch != _state.Epoch)
                {
                    await ApplyResetAsync(stored).ConfigureAwait(false); // another node deleted the history, and its notice was lost
                }
                else if (stored.Head > _state.Head)
                {
                    _metrics.TailRecovered();
                    await CatchUpFromStoreAsync(stored.Head).ConfigureAwait(false);
                }

                await SubscribeAsync().ConfigureAwait(false); // again, if the broker was down when the room opened
                if (_presence.IsDistributed)
                {
                    await ReconcilePresenceAsync().ConfigureAwait(false);
                }

                break;
            case Trim t:
                try
                {
                    _state = await _store.TrimAsync(Name, _options.RetentionFor(Name), _options.Time.GetUtcNow()).ConfigureAwait(false);
                    PruneCache();
                    CloseIfIdle();
                }
                finally
                {
                    t.Done.TrySetResult();
                }

                break;
        }
    }

    private TaskCompletionSource? _resetting;

    /// <summary>
    /// Set while a reset is under way here (from before the store deletes until the members were told): a catch-up
    /// that read a page meanwhile cannot know which epoch it came from, so it waits for this and reads again.
    /// </summary>
    internal Task? PendingReset => Volatile.Read(ref _resetting)?.Task;

    private async Task ResetAsync(Reset r)
    {
        var resetting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _resetting, resetting);
        try
        {
            RoomState state = r.Done is null ? await _store.OpenRoomAsync(Name).ConfigureAwait(false) : await _store.ResetAsync(Name).ConfigureAwait(false);
            if (state.Epoch != _state.Epoch)
            {
                await ApplyResetAsync(state).ConfigureAwait(false);
            }

            r.Done?.TrySetResult(state);
        }
        catch (Exception ex)
        {
            r.Done?.TrySetException(ex);
        }
        finally
        {
            Volatile.Write(ref _resetting, null);
            resetting.TrySetResult();
        }
    }

    /// <summary>
    /// The history started over in <paramref name="stored"/>'s epoch: forget the old one (cache, held messages), tell
    /// every live member (<c>reset</c>; catching-up members learn it in their loop), then deliver what the new history
    /// already holds.
    /// </summary>
    private async Task ApplyResetAsync(RoomState stored)
    {
        _state = new RoomState(stored.Epoch, 0, 1);
        _recent.Clear();
        Volatile.Write(ref _cachedCount, 0);
        foreach (Held held in _held.Values)
        {
            foreach (var (publish, result) in held.Acks ?? [])
            {
                publish.Done(result, null); // committed before the deletion: acknowledged as stored, then deleted with the rest
            }
        }

        _held.Clear();
        _holeTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _metrics.HistoryReset(Kind);
        OutboundMessage notice = HubProtocol.Build(new ResetMessage(Name, stored.Epoch, 0));
        foreach (Subscriber s in _live)
        {
            s.LastOffset = 0;
            if (s.IsMember)
            {
                s.Connection!.Send(notice);
            }
        }

        if (stored.Head > 0)
        {
            await CatchUpFromStoreAsync(stored.Head).ConfigureAwait(false);
        }
    }

    private void HandleJoinStart(JoinStart j)
    {
        Subscriber s = j.Subscriber;
        if (s.IsMember)
        {
            AddPresence(s);
        }

        bool epochChanged = j.Epoch is not null && j.Epoch != _state.Epoch;
        long cursor;
        if (j.Since is null)
        {
            cursor = Math.Max(_state.First - 1, _state.Head - _options.HistoryOnJoin);
        }
        else if (epochChanged)
        {
            cursor = 0;
        }
        else
        {
            cursor = Math.Min(j.Since.Value, _state.Head);
        }

        long gapFrom = 0, gapTo = 0;
        if (cursor < _state.First - 1)
        {
            gapFrom = cursor + 1;
            gapTo = _state.First - 1;
            cursor = _state.First - 1;
        }

        if (s.IsMember)
        {
            RoomMember[] members = [.. _members.Values.Select(m => new RoomMember(m.Identity.UserId, m.Identity.Name))];
            s.Connection!.Send(HubProtocol.Build(new JoinedMessage(Name, _state.Epoch, _state.Head, cursor, members, epochChanged) { Ref = j.Ref }));
            if (gapTo > 0)
            {
                s.Connection!.Send(Gap(Name, gapFrom, gapTo));
            }
        }

        if (CacheCovers(cursor))
        {
            bool sent;
            using (cursor < _state.Head ? HubTracing.StartCatchUp(Name, cursor, "cache") : null)
            {
                sent = SendCachedAfter(s, cursor); // the replay from the room's cache of recent messages
            }

            if (sent)
            {
                AddLive(s);
            }
            else if (s.IsMember)
            {
                DropLagging([s]);
            }

            j.Done.TrySetResult(null);
        }
        else
        {
            j.Done.TrySetResult((cursor, _state.Epoch));
        }
    }

    /// <summary>The <c>gap</c> notice: messages from..to are gone (retention) and will never be delivered.</summary>
    public static OutboundMessage Gap(string room, long from, long to) => HubProtocol.Build(new GapMessage(room, from, to, "retention"));

    /// <summary>This node's key for a session's connection (unique across nodes).</summary>
    private string Key(Subscriber member) => _presence.NodeId + ":" + member.Connection!.Id;

    private void AddPresence(Subscriber member)
    {
        string key = Key(member);
        _localConnections++;
        ApplyPresence(key, member.Identity!, joined: true);
        if (_presence.IsDistributed)
        {
            _background.Track(AnnounceAsync(key, member.Identity!, joined: true));
        }
    }

    private void HandleLeave(Subscriber s)
    {
        s.Remove();
        RemoveLive(s);
        if (!s.IsMember)
        {
            return;
        }

        string key = Key(s);
        HubIdentity identity = s.Identity!;
        if (_members.TryGetValue(identity.UserId, out Member? member) && member.Connections.Contains(key))
        {
            _localConnections--;
            ApplyPresence(key, identity, joined: false);
            if (_presence.IsDistributed)
            {
                _background.Track(AnnounceAsync(key, identity, joined: false));
            }
        }
    }

    private async Task AnnounceAsync(string key, HubIdentity identity, bool joined)
    {
        try
        {
            await (joined ? _presence.AddAsync(Name, key, identity) : _presence.RemoveAsync(Name, key, identity)).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogDebug(ex, "Room {Room}: presence update failed; the next reconcile repairs it", Name);
        }
    }

    /// <summary>
    /// Adds or removes one connection (of any node) in the member list, as a set operation; member_joined goes out when a
    /// user's first connection arrives and member_left when the last one goes, to the members connected here. Every node
    /// applies the same changes, so each tells its own members once.
    /// </summary>
    private void ApplyPresence(string key, HubIdentity identity, bool joined)
    {
        if (joined)
        {
            if (!_members.TryGetValue(identity.UserId, out Member? member))
            {
                member = new Member(identity);
                _members[identity.UserId] = member;
                Announce(Presence(HubMessageTypes.MemberJoined, identity));
            }

            member.Connections.Add(key);
        }
        else if (_members.TryGetValue(identity.UserId, out Member? member) && member.Connections.Remove(key) && member.Connections.Count == 0)
        {
            _members.Remove(identity.UserId);
            Announce(Presence(HubMessageTypes.MemberLeft, member.Identity));
        }
    }

    private void Announce(OutboundMessage presence)
    {
        foreach (Subscriber other in _live)
        {
            if (other.IsMember)
            {
                other.Connection!.Send(presence);
            }
        }
    }

    /// <summary>A change from another node (changes of this node's own connections are decided here, not by the feed).</summary>
    private void ApplyRemotePresence(PresenceChange change)
    {
        if (!change.Connection.StartsWith(_presence.NodeId + ":", StringComparison.Ordinal))
        {
            ApplyPresence(change.Connection, change.Identity, change.Joined);
        }
    }

    /// <summary>
    /// Makes the member list match the shared presence: other nodes' connections that are gone (a change lost, or a
    /// node that died) leave, ones that are missing arrive; this node's own connections that the shared state lost (a
    /// Redis restart) are recorded again.
    /// </summary>
    private async Task ReconcilePresenceAsync()
    {
        IReadOnlyDictionary<string, HubIdentity> shared;
        try
        {
            shared = await _presence.SnapshotAsync(Name).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogDebug(ex, "Room {Room}: presence snapshot failed; keeping the current member list", Name);
            return;
        }

        string own = _presence.NodeId + ":";
        foreach (var (userId, member) in _members.ToArray())
        {
            foreach (string key in member.Connections.ToArray())
            {
                if (key.StartsWith(own, StringComparison.Ordinal))
                {
                    if (!shared.ContainsKey(key))
                    {
                        _background.Track(AnnounceAsync(key, member.Identity, joined: true));
                    }
                }
                else if (!shared.ContainsKey(key))
                {
                    ApplyPresence(key, member.Identity, joined: false);
                }
            }
        }

        foreach (var (key, identity) in shared)
        {
            if (!key.StartsWith(own, StringComparison.Ordinal) && !(_members.TryGetValue(identity.UserId, out Member? m) && m.Connections.Contains(key)))
            {
                ApplyPresence(key, identity, joined: true);
            }
        }
    }

    private OutboundMessage Presence(string type, HubIdentity id) => HubProtocol.Build(new PresenceMessage(type, Name, id.UserId, id.Name));
}
