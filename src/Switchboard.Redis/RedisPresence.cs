using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Switchboard.Hub;

namespace Switchboard.Redis;

/// <summary>
/// Presence shared by the nodes through Redis, on the broker's connection:
/// <list type="bullet">
/// <item>a hash per room, <c>switchboard:presence:ROOM</c>, field = connection key (node id ':' connection id), value =
/// the user's id and name;</item>
/// <item>a liveness key per node, <c>switchboard:node:ID</c>, set with an expiry of <see cref="NodeTimeout"/> and renewed
/// three times per timeout: a node that dies stops renewing it, and the next snapshot anyone takes drops (and deletes)
/// that node's connections;</item>
/// <item>changes announced on <c>switchboard:presence-events:ROOM</c> (sharded like the broker's channels).</item>
/// </list>
/// </summary>
public sealed class RedisPresence : IPresence
{
    private const string RoomPrefix = "switchboard:presence:";
    private const string NodePrefix = "switchboard:node:";
    private const string EventPrefix = "switchboard:presence-events:";

    private readonly RedisBroker _broker;
    private readonly IDatabase _db;
    private readonly ITimer _heartbeat;
    private readonly ILogger _logger;

    /// <summary>Presence over <paramref name="broker"/>'s Redis connection; this node's liveness is renewed on <paramref name="time"/>.</summary>
    public RedisPresence(RedisBroker broker, TimeSpan? nodeTimeout = null, TimeProvider? time = null, ILogger? logger = null)
    {
        _broker = broker;
        _db = broker.Connection.GetDatabase();
        _logger = logger ?? NullLogger.Instance;
        NodeTimeout = nodeTimeout ?? TimeSpan.FromSeconds(15);
        NodeId = Guid.NewGuid().ToString("N")[..12];
        Beat();
        _heartbeat = (time ?? TimeProvider.System).CreateTimer(static s => ((RedisPresence)s!).Beat(), this, NodeTimeout / 3, NodeTimeout / 3);
    }

    /// <inheritdoc />
    public bool IsDistributed => true;

    /// <inheritdoc />
    public string NodeId { get; }

    /// <inheritdoc />
    public TimeSpan NodeTimeout { get; }

    private void Beat()
    {
        try
        {
            _db.StringSet(NodePrefix + NodeId, "1", NodeTimeout, flags: CommandFlags.FireAndForget);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            _logger.LogDebug(ex, "Presence heartbeat failed");
        }
    }

    /// <inheritdoc />
    public ValueTask AddAsync(string room, string connection, HubIdentity identity) => ChangeAsync(room, new PresenceChange(connection, identity, true));

    /// <inheritdoc />
    public ValueTask RemoveAsync(string room, string connection, HubIdentity identity) => ChangeAsync(room, new PresenceChange(connection, identity, false));

    /// <summary>Records (or removes) a connection in the room's hash, then announces the change on the room's presence channel.</summary>
    private async ValueTask ChangeAsync(string room, PresenceChange change)
    {
        if (!_broker.Connection.IsConnected)
        {
            return; // the room's next reconcile after Redis is back records (or drops) it
        }

        try
        {
            if (change.Joined)
            {
                await _db.HashSetAsync(RoomPrefix + room, change.Connection, Encode(change.Identity)).ConfigureAwait(false);
            }
            else
            {
                await _db.HashDeleteAsync(RoomPrefix + room, change.Connection).ConfigureAwait(false);
            }

            await _broker.Connection.GetSubscriber().PublishAsync(_broker.ChannelFor(EventPrefix + room), Encode(change), CommandFlags.FireAndForget).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            _logger.LogDebug(ex, "Presence change failed; the room's next reconcile repairs it");
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyDictionary<string, HubIdentity>> SnapshotAsync(string room)
    {
        _broker.ThrowIfDown(); // the caller keeps its view, and its room's worker moves on

        HashEntry[] entries = await _db.HashGetAllAsync(RoomPrefix + room).ConfigureAwait(false);
        var byNode = entries.GroupBy(e => NodeOf(e.Name!)).ToArray();
        var alive = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var node in byNode)
        {
            alive[node.Key] = await _db.KeyExistsAsync(NodePrefix + node.Key).ConfigureAwait(false);
        }

        var result = new Dictionary<string, HubIdentity>(StringComparer.Ordinal);
        var dead = new List<RedisValue>();
        foreach (HashEntry e in entries)
        {
            if (!alive[NodeOf(e.Name!)])
            {
                dead.Add(e.Name);
            }
            else if (TryDecodeIdentity(e.Value, out HubIdentity? who))
            {
                result[e.Name!] = who!;
            }
        }

        if (dead.Count > 0)
        {
            await _db.HashDeleteAsync(RoomPrefix + room, [.. dead]).ConfigureAwait(false); // a dead node's connections, for everyone
        }

        return result;
    }

    private static string NodeOf(string connection)
    {
        int colon = connection.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? connection : connection[..colon];
    }

    /// <inheritdoc />
    public async ValueTask<IAsyncDisposable> SubscribeAsync(string room, Action<PresenceChange> handler)
    {
        ChannelMessageQueue queue = await _broker.Connection.GetSubscriber().SubscribeAsync(_broker.ChannelFor(EventPrefix + room)).ConfigureAwait(false);
        queue.OnMessage(m =>
        {
            if (TryDecodeChange(m.Message, out PresenceChange? change))
            {
                handler(change!);
            }
        });
        return new Subscription(queue);
    }

    private sealed class Subscription(ChannelMessageQueue queue) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await queue.UnsubscribeAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
            {
            }
        }
    }

    private static byte[] Encode(HubIdentity who) => JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["u"] = who.UserId, ["n"] = who.Name });

    private static byte[] Encode(PresenceChange c) =>
        JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["c"] = c.Connection, ["u"] = c.Identity.UserId, ["n"] = c.Identity.Name, ["j"] = c.Joined ? "1" : "0" });

    private static bool TryDecodeIdentity(RedisValue value, out HubIdentity? who)
    {
        who = null;
        try
        {
            var d = JsonSerializer.Deserialize<Dictionary<string, string>>((ReadOnlySpan<byte>)(byte[])value!);
            who = d is not null && d.TryGetValue("u", out string? u) && d.TryGetValue("n", out string? n) ? new HubIdentity(u, n) : null;
            return who is not null;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool TryDecodeChange(RedisValue value, out PresenceChange? change)
    {
        change = null;
        try
        {
            var d = JsonSerializer.Deserialize<Dictionary<string, string>>((ReadOnlySpan<byte>)(byte[])value!);
            if (d is not null && d.TryGetValue("c", out string? c) && d.TryGetValue("u", out string? u) && d.TryGetValue("n", out string? n) && d.TryGetValue("j", out string? j))
            {
                change = new PresenceChange(c, new HubIdentity(u, n), j == "1");
            }

            return change is not null;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Stops renewing this node's liveness and removes it: a node that shuts down is gone at once, not after the timeout.</summary>
    public async ValueTask DisposeAsync()
    {
        await _heartbeat.DisposeAsync().ConfigureAwait(false);
        try
        {
            await _db.KeyDeleteAsync(NodePrefix + NodeId).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
        }
    }

    /// <summary>For tests: stop renewing liveness without removing anything, as a killed process would.</summary>
    internal void Kill() => _heartbeat.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
}
