using System.Collections.Concurrent;
using Switchboard.Hub;
using Switchboard.Redis;

namespace Switchboard.Stores.Tests;

/// <summary>The <see cref="IPresence"/> contract, run against every implementation, with two or three nodes onto one medium.</summary>
public abstract class PresenceContractTests : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _owned = [];

    /// <summary>A new node onto the shared medium, whose liveness times out after <paramref name="nodeTimeout"/>.</summary>
    protected abstract Task<IPresence> NodeAsync(TimeSpan nodeTimeout);

    /// <summary>Stops a node's liveness without removing anything (kill -9).</summary>
    protected abstract void Kill(IPresence node);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (IAsyncDisposable d in Enumerable.Reverse(_owned))
        {
            await d.DisposeAsync();
        }
    }

    protected void Own(IAsyncDisposable d) => _owned.Add(d);

    private async Task<IPresence> NewNodeAsync(TimeSpan? timeout = null)
    {
        IPresence node = await NodeAsync(timeout ?? TimeSpan.FromSeconds(15));
        Own(node);
        return node;
    }

    private static string Room() => "p-" + Guid.NewGuid().ToString("N");

    private static async Task<T> NextAsync<T>(BlockingCollection<T> inbox)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        T? item;
        while (!inbox.TryTake(out item, 50))
        {
            Assert.True(DateTime.UtcNow < deadline, "nothing arrived");
            await Task.Yield();
        }

        return item;
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Connections_added_on_one_node_are_seen_and_announced_on_another_and_removed_alike()
    {
        IPresence a = await NewNodeAsync(), b = await NewNodeAsync();
        Assert.True(a.IsDistributed);
        Assert.NotEqual(a.NodeId, b.NodeId);
        string room = Room();
        var changes = new BlockingCollection<PresenceChange>();
        Own(await b.SubscribeAsync(room, changes.Add));

        string tab1 = a.NodeId + ":1", tab2 = a.NodeId + ":2";
        var ann = new HubIdentity("ann", "Ann Ü");
        await a.AddAsync(room, tab1, ann);
        await a.AddAsync(room, tab2, ann);
        Assert.Equal(new PresenceChange(tab1, ann, true), await NextAsync(changes));
        Assert.Equal(new PresenceChange(tab2, ann, true), await NextAsync(changes));
        IReadOnlyDictionary<string, HubIdentity> seen = await b.SnapshotAsync(room);
        Assert.Equal([tab1, tab2], seen.Keys.Order());
        Assert.Equal(ann, seen[tab1]);

        await a.RemoveAsync(room, tab1, ann);
        Assert.Equal(new PresenceChange(tab1, ann, false), await NextAsync(changes));
        Assert.Equal([tab2], (await b.SnapshotAsync(room)).Keys);
        Assert.Empty(await b.SnapshotAsync(Room())); // rooms are separate
    }

    [Fact]
    public async Task A_node_that_stops_leaves_every_snapshot_within_its_timeout_and_the_others_stay()
    {
        // 3 s: renewed every second, so a loaded machine does not miss a renewal of the node that stays
        IPresence dying = await NewNodeAsync(TimeSpan.FromSeconds(3)), staying = await NewNodeAsync(TimeSpan.FromSeconds(3)), observer = await NewNodeAsync();
        string room = Room();
        await dying.AddAsync(room, dying.NodeId + ":1", new HubIdentity("bob", "Bob"));
        await staying.AddAsync(room, staying.NodeId + ":1", new HubIdentity("cy", "Cy"));
        Assert.Equal(2, (await observer.SnapshotAsync(room)).Count);

        Kill(dying);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await UntilAsync(async () => (await observer.SnapshotAsync(room)).Count == 1, "the dead node's connection to leave");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
        Assert.Equal([staying.NodeId + ":1"], (await observer.SnapshotAsync(room)).Keys); // the live node's connection stays (it keeps renewing)
    }
}

public sealed class InMemoryPresenceContractTests : PresenceContractTests
{
    private readonly InMemoryPresence.Medium _medium = new(nodeTimeout: TimeSpan.FromSeconds(3));

    protected override Task<IPresence> NodeAsync(TimeSpan nodeTimeout) => Task.FromResult<IPresence>(InMemoryPresence.Node(_medium));

    protected override void Kill(IPresence node) => ((InMemoryPresence)node).Kill();
}

[Collection(RedisCollection.Name)]
public sealed class RedisPresenceContractTests(RedisServerFixture redis) : PresenceContractTests
{
    protected override async Task<IPresence> NodeAsync(TimeSpan nodeTimeout)
    {
        RedisBroker broker = await RedisBroker.ConnectAsync(redis.Server.Configuration, TimeSpan.FromSeconds(10));
        Own(broker);
        return new RedisPresence(broker, nodeTimeout);
    }

    protected override void Kill(IPresence node) => ((RedisPresence)node).Kill();
}
