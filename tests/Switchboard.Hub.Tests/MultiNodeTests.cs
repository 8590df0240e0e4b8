using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace Switchboard.Hub.Tests;

/// <summary>A connection that keeps everything sent to it (in order) and never falls behind.</summary>
internal sealed class RecordingConnection(string id) : IHubConnection
{
    private readonly List<JsonElement> _received = [];

    public string Id => id;

    public long QueuedBytes => 0;

    public List<JsonElement> Received
    {
        get
        {
            lock (_received)
            {
                return [.. _received];
            }
        }
    }

    public bool Send(OutboundMessage message)
    {
        using JsonDocument doc = JsonDocument.Parse(message.Utf8Json);
        lock (_received)
        {
            _received.Add(doc.RootElement.Clone());
        }

        return true;
    }

    public bool TrySendLive(OutboundMessage message, long softLimitBytes) => Send(message);

    public Task WhenDrainedAsync() => Task.CompletedTask;

    public ushort? ClosedWith { get; private set; }

    public void Close(ushort code, string reason) => ClosedWith ??= code;

    public long[] Offsets(string room) => [.. Received.Where(e => e.GetProperty("type").GetString() == "message" && e.GetProperty("room").GetString() == room)
        .Select(e => e.GetProperty("offset").GetInt64())];
}

/// <summary>A broker that loses and reorders: every <c>dropEvery</c>-th message is lost, every other one is held back and sent after the next.</summary>
internal sealed class UnreliableBroker(IBroker inner, int dropEvery) : IBroker
{
    private int _count;
    private (string Room, StoredMessage Message)? _delayed;
    private readonly Lock _lock = new();

    public bool IsDistributed => inner.IsDistributed;

    public async ValueTask PublishAsync(string room, StoredMessage message)
    {
        int n = Interlocked.Increment(ref _count);
        if (n % dropEvery == 0)
        {
            return; // lost
        }

        (string Room, StoredMessage Message)? release = null;
        lock (_lock)
        {
            if (n % 2 == 0 && _delayed is null)
            {
                _delayed = (room, message); // overtaken by the next one
                return;
            }

            release = _delayed;
            _delayed = null;
        }

        await inner.PublishAsync(room, message);
        if (release is { } r)
        {
            await inner.PublishAsync(r.Room, r.Message);
        }
    }

    public ValueTask<IAsyncDisposable> SubscribeAsync(string room, Action<StoredMessage> handler, CancellationToken cancellationToken = default) =>
        inner.SubscribeAsync(room, handler, cancellationToken);

    /// <summary>Loses every control message (a node that never hears of a reset must find it on its head check).</summary>
    public bool LoseControl { get; init; }

    public ValueTask PublishControlAsync(BrokerControl control) => LoseControl ? ValueTask.CompletedTask : inner.PublishControlAsync(control);

    public ValueTask<IAsyncDisposable> SubscribeControlAsync(Action<BrokerControl> handler, CancellationToken cancellationToken = default) =>
        inner.SubscribeControlAsync(handler, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Several hubs over one store and one broker behave as one service (in one process: the Redis and PostgreSQL runs are in ScaleOutTests).</summary>
public class MultiNodeTests
{
    private static HubOptions Options() => new()
    {
        PublishRateLimit = 0,
        HoleWait = TimeSpan.FromMilliseconds(20),
        HeadCheckInterval = TimeSpan.FromMilliseconds(200),
    };

    private static ReadOnlySequence<byte> Command(object command) => new(JsonSerializer.SerializeToUtf8Bytes(command));

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(10);
        }
    }

    [Theory]
    [InlineData(1_000_000)] // a reliable broker (reordering only)
    [InlineData(3)]         // one message in three lost
    public async Task Publishes_through_two_nodes_reach_every_member_once_in_offset_order(int dropEvery)
    {
        var store = new InMemoryMessageStore();
        var shared = new InMemoryBroker(distributed: true);
        await using var a = new Hub(store, Options(), broker: new UnreliableBroker(shared, dropEvery));
        await using var b = new Hub(store, Options(), broker: new UnreliableBroker(shared, dropEvery));
        const string room = "shared";
        var onA = new RecordingConnection("a1");
        var onB = new RecordingConnection("b1");
        await a.Connect(onA, new HubIdentity("ann", "Ann")).HandleAsync(Command(new { type = "join", room }));
        await b.Connect(onB, new HubIdentity("bob", "Bob")).HandleAsync(Command(new { type = "join", room }));
        await WaitForAsync(() => onA.Received.Any(e => e.GetProperty("type").GetString() == "joined") && onB.Received.Any(e => e.GetProperty("type").GetString() == "joined"), "joined");

        const int each = 150;
        var acked = new ConcurrentBag<long>();
        await Task.WhenAll(
            Task.Run(async () => { for (int i = 0; i < each; i++) acked.Add((await a.PublishAsync(room, new HubIdentity("pa", "PA"), "a" + i)).Message.Offset); }),
            Task.Run(async () => { for (int i = 0; i < each; i++) acked.Add((await b.PublishAsync(room, new HubIdentity("pb", "PB"), "b" + i)).Message.Offset); }));
        Assert.Equal(Enumerable.Range(1, 2 * each).Select(i => (long)i), acked.Order()); // dense offsets from the shared store

        await WaitForAsync(() => onA.Offsets(room).Length >= 2 * each && onB.Offsets(room).Length >= 2 * each, "every message on both nodes");
        Assert.Equal(Enumerable.Range(1, 2 * each).Select(i => (long)i), onA.Offsets(room));
        Assert.Equal(Enumerable.Range(1, 2 * each).Select(i => (long)i), onB.Offsets(room));
    }

    [Fact]
    public async Task A_burst_whose_last_messages_the_broker_lost_still_arrives_through_the_head_check()
    {
        var store = new InMemoryMessageStore();
        var shared = new InMemoryBroker(distributed: true);
        var silent = new UnreliableBroker(shared, dropEvery: 1); // loses everything
        await using var a = new Hub(store, Options(), broker: silent);
        await using var b = new Hub(store, Options(), broker: shared);
        var onB = new RecordingConnection("b1");
        await b.Connect(onB, new HubIdentity("bob", "Bob")).HandleAsync(Command(new { type = "join", room = "tail" }));
        await WaitForAsync(() => onB.Received.Any(e => e.GetProperty("type").GetString() == "joined"), "joined");
        for (int i = 0; i < 5; i++)
        {
            await a.PublishAsync("tail", new HubIdentity("pa", "PA"), "lost on the way " + i);
        }

        await WaitForAsync(() => onB.Offsets("tail").Length >= 5, "the tail from the store");
        Assert.Equal([1L, 2, 3, 4, 5], onB.Offsets("tail"));
    }

    [Fact]
    public async Task Resume_on_another_node_gets_exactly_what_was_missed()
    {
        var store = new InMemoryMessageStore();
        var shared = new InMemoryBroker(distributed: true);
        await using var a = new Hub(store, Options(), broker: shared);
        await using var b = new Hub(store, Options(), broker: shared);
        var first = new RecordingConnection("a1");
        HubSession sessionA = a.Connect(first, new HubIdentity("cy", "Cy"));
        await sessionA.HandleAsync(Command(new { type = "join", room = "resume", since = 0 }));
        for (int i = 0; i < 10; i++)
        {
            await a.PublishAsync("resume", new HubIdentity("w", "W"), "m" + i);
        }

        await WaitForAsync(() => first.Offsets("resume").Length == 10, "ten on node A");
        string epoch = first.Received.First(e => e.GetProperty("type").GetString() == "joined").GetProperty("epoch").GetString()!;
        await sessionA.DisconnectedAsync();
        for (int i = 10; i < 25; i++)
        {
            await b.PublishAsync("resume", new HubIdentity("w", "W"), "m" + i);
        }

        var second = new RecordingConnection("b1");
        await b.Connect(second, new HubIdentity("cy", "Cy")).HandleAsync(Command(new { type = "join", room = "resume", since = 10, epoch }));
        await WaitForAsync(() => second.Offsets("resume").Length >= 15, "the fifteen missed");
        Assert.Equal(Enumerable.Range(11, 15).Select(i => (long)i), second.Offsets("resume"));
    }

    private static string[] Types(RecordingConnection c, string room) =>
        [.. c.Received.Where(e => e.TryGetProperty("room", out JsonElement r) && r.GetString() == room).Select(e => e.GetProperty("type").GetString()!)];

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // the notice is lost: the other node finds the new epoch on its head check
    public async Task Deleting_a_history_through_one_node_resets_the_members_of_every_node(bool controlLost)
    {
        var store = new InMemoryMessageStore();
        var shared = new InMemoryBroker(distributed: true);
        await using var a = new Hub(store, Options(), broker: new UnreliableBroker(shared, int.MaxValue) { LoseControl = controlLost });
        await using var b = new Hub(store, Options(), broker: shared);
        await a.InitializeAsync();
        await b.InitializeAsync();
        const string room = "reset";
        var onA = new RecordingConnection("a1");
        var onB = new RecordingConnection("b1");
        await a.Connect(onA, new HubIdentity("ann", "Ann")).HandleAsync(Command(new { type = "join", room }));
        await b.Connect(onB, new HubIdentity("bob", "Bob")).HandleAsync(Command(new { type = "join", room }));
        await WaitForAsync(() => Types(onA, room).Contains("joined") && Types(onB, room).Contains("joined"), "joined");
        for (int i = 0; i < 5; i++)
        {
            await a.PublishAsync(room, new HubIdentity("w", "W"), "old " + i);
        }

        await WaitForAsync(() => onB.Offsets(room).Length == 5, "five on node B");
        RoomState state = (await a.ResetRoomAsync(room))!.Value;
        Assert.Equal((0L, 1L), (state.Head, state.First));
        Assert.Equal(1, (await a.PublishAsync(room, new HubIdentity("w", "W"), "new")).Message.Offset);

        foreach (RecordingConnection member in new[] { onA, onB })
        {
            await WaitForAsync(() => member.Offsets(room).Length == 6, "the new message after the reset");
            Assert.Equal([1L, 2, 3, 4, 5, 1], member.Offsets(room));
            JsonElement reset = member.Received.Single(e => e.GetProperty("type").GetString() == "reset");
            Assert.Equal((state.Epoch, 0L), (reset.GetProperty("epoch").GetString(), reset.GetProperty("offset").GetInt64()));
            Assert.Equal(["joined", "message", "message", "message", "message", "message", "reset", "message"], Types(member, room));
        }
    }

    [Fact]
    public async Task Disconnecting_a_user_closes_their_connections_on_every_node()
    {
        var store = new InMemoryMessageStore();
        var shared = new InMemoryBroker(distributed: true);
        await using var a = new Hub(store, Options(), broker: shared);
        await using var b = new Hub(store, Options(), broker: shared);
        await a.InitializeAsync();
        await b.InitializeAsync();
        var tabOnA = new RecordingConnection("a1");
        var tabOnB = new RecordingConnection("b1");
        var other = new RecordingConnection("b2");
        a.Connect(tabOnA, new HubIdentity("eve", "Eve"));
        b.Connect(tabOnB, new HubIdentity("eve", "Eve"));
        b.Connect(other, new HubIdentity("ann", "Ann"));

        Assert.Equal(1, await a.DisconnectUserEverywhereAsync("eve")); // this node's
        await WaitForAsync(() => tabOnB.ClosedWith is not null, "the other node's connection closed");
        Assert.Equal(HubCloseCodes.Disconnected, tabOnA.ClosedWith);
        Assert.Equal(HubCloseCodes.Disconnected, tabOnB.ClosedWith);
        Assert.Null(other.ClosedWith);
    }

    private static int Count(RecordingConnection c, string type, string user) =>
        c.Received.Count(e => e.GetProperty("type").GetString() == type && e.GetProperty("user").GetString() == user);

    [Fact]
    public async Task A_user_with_tabs_on_two_nodes_is_one_member_joined_and_left_once_everywhere()
    {
        var store = new InMemoryMessageStore();
        var broker = new InMemoryBroker(distributed: true);
        var medium = new InMemoryPresence.Medium();
        await using var a = new Hub(store, Options(), broker: broker, presence: InMemoryPresence.Node(medium));
        await using var b = new Hub(store, Options(), broker: broker, presence: InMemoryPresence.Node(medium));
        const string room = "tabs";
        var observerA = new RecordingConnection("obs-a");
        var observerB = new RecordingConnection("obs-b");
        await a.Connect(observerA, new HubIdentity("obs", "Observer")).HandleAsync(Command(new { type = "join", room }));
        await b.Connect(observerB, new HubIdentity("obs2", "Observer 2")).HandleAsync(Command(new { type = "join", room }));
        await WaitForAsync(() => Count(observerA, "member_joined", "obs2") == 1, "observers see each other across nodes");

        HubSession tab1 = a.Connect(new RecordingConnection("t1"), new HubIdentity("ann", "Ann"));
        HubSession tab2 = b.Connect(new RecordingConnection("t2"), new HubIdentity("ann", "Ann"));
        await tab1.HandleAsync(Command(new { type = "join", room }));
        await tab2.HandleAsync(Command(new { type = "join", room }));
        await WaitForAsync(() => Count(observerA, "member_joined", "ann") == 1 && Count(observerB, "member_joined", "ann") == 1, "ann joined on both nodes");

        var late = new RecordingConnection("late");
        await b.Connect(late, new HubIdentity("late", "Late")).HandleAsync(Command(new { type = "join", room }));
        await WaitForAsync(() => late.Received.Any(e => e.GetProperty("type").GetString() == "joined"), "joined");
        JsonElement members = late.Received.First(e => e.GetProperty("type").GetString() == "joined").GetProperty("members");
        Assert.Equal(1, members.EnumerateArray().Count(m => m.GetProperty("user").GetString() == "ann")); // one member, two tabs
        Assert.Contains(members.EnumerateArray(), m => m.GetProperty("user").GetString() == "obs"); // a member of the other node

        await tab1.DisconnectedAsync();
        await tab2.HandleAsync(Command(new { type = "ping" }));
        Assert.Equal(0, Count(observerA, "member_left", "ann") + Count(observerB, "member_left", "ann")); // still there through tab 2
        await tab2.DisconnectedAsync();
        await WaitForAsync(() => Count(observerA, "member_left", "ann") == 1 && Count(observerB, "member_left", "ann") == 1, "ann left on both nodes");
        Assert.Equal(1, Count(observerA, "member_joined", "ann")); // and never joined twice
    }

    [Fact]
    public async Task The_members_of_a_node_that_dies_leave_every_list_within_the_node_timeout()
    {
        var store = new InMemoryMessageStore();
        var broker = new InMemoryBroker(distributed: true);
        // 3 s: renewed every second, so a loaded machine does not miss a renewal of the node that stays
        var medium = new InMemoryPresence.Medium(nodeTimeout: TimeSpan.FromSeconds(3));
        InMemoryPresence dying = InMemoryPresence.Node(medium);
        await using var a = new Hub(store, Options(), broker: broker, presence: InMemoryPresence.Node(medium));
        await using var b = new Hub(store, Options(), broker: broker, presence: dying);
        var observer = new RecordingConnection("obs");
        await a.Connect(observer, new HubIdentity("obs", "Observer")).HandleAsync(Command(new { type = "join", room = "doomed" }));
        await b.Connect(new RecordingConnection("bob"), new HubIdentity("bob", "Bob")).HandleAsync(Command(new { type = "join", room = "doomed" }));
        await WaitForAsync(() => Count(observer, "member_joined", "bob") == 1, "bob joined");

        dying.Kill(); // no leave, no cleanup: as kill -9 would
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await WaitForAsync(() => Count(observer, "member_left", "bob") >= 1, "bob to leave after his node died");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.5), "left before the node could have timed out");
        Assert.Equal(1, Count(observer, "member_joined", "bob"));
        Assert.Equal(1, Count(observer, "member_left", "bob"));
    }
}
