using System.Collections.Concurrent;
using Switchboard.Hub;
using Switchboard.Redis;

namespace Switchboard.Stores.Tests;

/// <summary>
/// The <see cref="IBroker"/> contract, run against every implementation. Each test gets two "nodes" (two broker
/// handles onto the same medium: one shared in-process broker, or two connections to one Redis).
/// </summary>
public abstract class BrokerContractTests : IAsyncLifetime
{
    private readonly List<IBroker> _nodes = [];

    /// <summary>A new handle onto the medium this test class shares (a node).</summary>
    protected abstract Task<IBroker> NodeAsync();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (IBroker b in _nodes)
        {
            await b.DisposeAsync();
        }
    }

    private async Task<IBroker> NewNodeAsync()
    {
        IBroker b = await NodeAsync();
        _nodes.Add(b);
        return b;
    }

    private static StoredMessage Message(long offset, string text = "hello") =>
        new(offset, "id-" + offset, "user-1", "User One", text, DateTimeOffset.FromUnixTimeMilliseconds(1_764_000_000_123));

    protected static async Task<T> NextAsync<T>(BlockingCollection<T> inbox)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        T? m;
        while (!inbox.TryTake(out m, 50))
        {
            Assert.True(DateTime.UtcNow < deadline, "nothing arrived");
            await Task.Yield();
        }

        return m;
    }

    [Fact]
    public async Task A_published_message_reaches_every_subscribed_node_whole()
    {
        IBroker a = await NewNodeAsync(), b = await NewNodeAsync();
        Assert.True(a.IsDistributed);
        string room = "r-" + Guid.NewGuid().ToString("N");
        var atA = new BlockingCollection<StoredMessage>();
        var atB = new BlockingCollection<StoredMessage>();
        await using IAsyncDisposable sa = await a.SubscribeAsync(room, atA.Add);
        await using IAsyncDisposable sb = await b.SubscribeAsync(room, atB.Add);

        StoredMessage sent = Message(7, "κόσμε \"quoted\" \u0000 😀");
        await a.PublishAsync(room, sent);
        Assert.Equal(sent, await NextAsync(atA)); // the publishing node too
        Assert.Equal(sent, await NextAsync(atB));
    }

    [Fact]
    public async Task Rooms_are_separate_and_unsubscribing_stops_delivery()
    {
        IBroker a = await NewNodeAsync(), b = await NewNodeAsync();
        string one = "one-" + Guid.NewGuid().ToString("N"), two = "two-" + Guid.NewGuid().ToString("N");
        var inbox = new BlockingCollection<StoredMessage>();
        IAsyncDisposable subscription = await b.SubscribeAsync(one, inbox.Add);
        await a.PublishAsync(two, Message(1, "other room"));
        await a.PublishAsync(one, Message(2, "this room"));
        Assert.Equal("this room", (await NextAsync(inbox)).Text);

        await subscription.DisposeAsync();
        var still = new BlockingCollection<StoredMessage>();
        await using IAsyncDisposable marker = await b.SubscribeAsync(two, still.Add);
        await a.PublishAsync(one, Message(3, "after unsubscribing"));
        await a.PublishAsync(two, Message(4, "marker"));
        Assert.Equal("marker", (await NextAsync(still)).Text); // published after: had the first arrived, it would be here by now
        Assert.Empty(inbox);
    }

    [Fact]
    public async Task A_control_message_reaches_every_node_whole_and_unsubscribing_stops_it()
    {
        IBroker a = await NewNodeAsync(), b = await NewNodeAsync();
        var atA = new BlockingCollection<BrokerControl>();
        var atB = new BlockingCollection<BrokerControl>();
        IAsyncDisposable sa = await a.SubscribeControlAsync(atA.Add);
        await using IAsyncDisposable sb = await b.SubscribeControlAsync(atB.Add);
        string subject = "user κόσμε\nwith a newline " + Guid.NewGuid().ToString("N");
        var sent = new BrokerControl(BrokerControl.DisconnectUser, subject);
        await b.PublishControlAsync(sent);
        Assert.Equal(sent, await NextAsync(atA));
        Assert.Equal(sent, await NextAsync(atB)); // the publishing node too

        await sa.DisposeAsync();
        var marker = new BrokerControl(BrokerControl.ResetRoom, "marker-" + Guid.NewGuid().ToString("N"));
        await a.PublishControlAsync(marker);
        Assert.Equal(marker, await NextAsync(atB)); // published after: had A still been subscribed, it would have it by now
        Assert.Empty(atA);
    }

    [Fact]
    public async Task Publishing_to_a_room_nobody_subscribed_to_is_fine()
    {
        IBroker a = await NewNodeAsync();
        await a.PublishAsync("nobody-" + Guid.NewGuid().ToString("N"), Message(1));
    }
}

public sealed class InMemoryBrokerContractTests : BrokerContractTests
{
    private readonly InMemoryBroker _shared = new(distributed: true);

    protected override Task<IBroker> NodeAsync() => Task.FromResult<IBroker>(new SharedHandle(_shared));

    /// <summary>Disposing a node's handle must not tear down the shared medium.</summary>
    private sealed class SharedHandle(InMemoryBroker inner) : IBroker
    {
        public bool IsDistributed => inner.IsDistributed;

        public ValueTask PublishAsync(string room, StoredMessage message) => inner.PublishAsync(room, message);

        public ValueTask<IAsyncDisposable> SubscribeAsync(string room, Action<StoredMessage> handler, CancellationToken cancellationToken = default) =>
            inner.SubscribeAsync(room, handler, cancellationToken);

        public ValueTask PublishControlAsync(BrokerControl control) => inner.PublishControlAsync(control);

        public ValueTask<IAsyncDisposable> SubscribeControlAsync(Action<BrokerControl> handler, CancellationToken cancellationToken = default) =>
            inner.SubscribeControlAsync(handler, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

public sealed class RedisServerFixture : IAsyncLifetime
{
    public RedisServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisServerFixture>
{
    public const string Name = "redis";
}

[Collection(RedisCollection.Name)]
public sealed class RedisBrokerContractTests(RedisServerFixture redis) : BrokerContractTests
{
    protected override async Task<IBroker> NodeAsync() => await RedisBroker.ConnectAsync(redis.Server.Configuration, TimeSpan.FromSeconds(10));

    [Fact]
    public async Task Redis_7_uses_sharded_channels()
    {
        await using RedisBroker broker = await RedisBroker.ConnectAsync(redis.Server.Configuration, TimeSpan.FromSeconds(10));
        Assert.True(broker.Sharded);
    }

    [Fact]
    public async Task Across_a_Redis_restart_publishing_never_throws_and_subscriptions_come_back_by_themselves()
    {
        // A Redis of its own: restarting the shared one would disturb the other tests.
        await using RedisServer own = await RedisServer.StartAsync();
        await using RedisBroker a = await RedisBroker.ConnectAsync(own.Configuration, TimeSpan.FromSeconds(10));
        await using RedisBroker b = await RedisBroker.ConnectAsync(own.Configuration, TimeSpan.FromSeconds(10));
        var inbox = new BlockingCollection<StoredMessage>();
        await using IAsyncDisposable subscription = await b.SubscribeAsync("restart", inbox.Add);
        await a.PublishAsync("restart", Message(1, "before"));
        Assert.Equal("before", (await NextAsync(inbox)).Text);

        await own.StopAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await a.PublishAsync("restart", Message(2, "while down")); // dropped, at once: the store has it
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"a publish waited {clock.Elapsed} for a Redis that is down");

        await own.StartAgainAsync();
        // Resubscribed by itself (no operator action): keep publishing until one arrives.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        StoredMessage? back = null;
        for (long offset = 3; back is null; offset++)
        {
            Assert.True(DateTime.UtcNow < deadline, "the subscription did not come back after Redis restarted");
            await a.PublishAsync("restart", Message(offset, "after"));
            inbox.TryTake(out back, 200);
        }

        Assert.Equal("after", back.Text);
    }

    private static StoredMessage Message(long offset, string text) =>
        new(offset, "id-" + offset, "user-1", "User One", text, DateTimeOffset.FromUnixTimeMilliseconds(1_764_000_000_123));
}

public sealed class RedisClusterFixture : IAsyncLifetime
{
    public RedisCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await RedisCluster.StartAsync();

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class RedisClusterCollection : ICollectionFixture<RedisClusterFixture>
{
    public const string Name = "redis-cluster";
}

/// <summary>The same contract on a Redis Cluster of three masters, with sharded channels spread over the shards.</summary>
[Collection(RedisClusterCollection.Name)]
public sealed class RedisClusterBrokerContractTests(RedisClusterFixture redis) : BrokerContractTests
{
    protected override async Task<IBroker> NodeAsync() => await RedisBroker.ConnectAsync(redis.Cluster.Configuration, TimeSpan.FromSeconds(10));

    [Fact]
    public async Task Rooms_spread_over_every_shard_all_deliver()
    {
        await using RedisBroker a = await RedisBroker.ConnectAsync(redis.Cluster.Configuration, TimeSpan.FromSeconds(10));
        await using RedisBroker b = await RedisBroker.ConnectAsync(redis.Cluster.Configuration, TimeSpan.FromSeconds(10));
        Assert.True(a.Sharded);
        // 30 rooms: their channels hash to slots on all three masters.
        string[] rooms = [.. Enumerable.Range(0, 30).Select(i => $"spread-{i}-{Guid.NewGuid():N}")];
        var inbox = new BlockingCollection<StoredMessage>();
        var subscriptions = new List<IAsyncDisposable>();
        foreach (string room in rooms)
        {
            subscriptions.Add(await b.SubscribeAsync(room, inbox.Add));
        }

        for (int i = 0; i < rooms.Length; i++)
        {
            await a.PublishAsync(rooms[i], new StoredMessage(i + 1, "id", "u", "U", rooms[i], DateTimeOffset.UnixEpoch));
        }

        var texts = new List<string>();
        while (texts.Count < rooms.Length)
        {
            texts.Add((await NextAsync(inbox)).Text);
        }

        Assert.Equal(rooms.Order(), texts.Order());
        foreach (IAsyncDisposable s in subscriptions)
        {
            await s.DisposeAsync();
        }
    }
}

[Collection(RedisClusterCollection.Name)]
public sealed class RedisClusterPresenceContractTests(RedisClusterFixture redis) : PresenceContractTests
{
    protected override async Task<IPresence> NodeAsync(TimeSpan nodeTimeout)
    {
        RedisBroker broker = await RedisBroker.ConnectAsync(redis.Cluster.Configuration, TimeSpan.FromSeconds(10));
        Own(broker);
        return new RedisPresence(broker, nodeTimeout);
    }

    protected override void Kill(IPresence node) => ((RedisPresence)node).Kill();
}
