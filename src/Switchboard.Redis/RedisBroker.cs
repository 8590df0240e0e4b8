using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Switchboard.Hub;

namespace Switchboard.Redis;

/// <summary>
/// The broker between Switchboard nodes over Redis pub/sub: each committed message is published on its room's channel
/// (<c>switchboard:room:NAME</c>), and every node with members in the room is subscribed to it. On Redis 7 and later the
/// channels are sharded (SPUBLISH/SSUBSCRIBE), so on a Redis Cluster each room's traffic stays on the shard that owns
/// its channel instead of being broadcast to every shard.
/// <para>
/// Redis pub/sub is at-most-once: a message published while a node's subscription is down (a Redis restart, a network
/// partition) never reaches it. That is expected by <see cref="IBroker"/>'s contract: the hub notices the hole (or the
/// missing tail, by its periodic head check) and reads what is missing from the store. StackExchange.Redis reconnects
/// and resubscribes by itself; publishes while Redis is down are dropped at once, never waited for.
/// </para>
/// </summary>
public sealed class RedisBroker : IBroker
{
    private const string Prefix = "switchboard:room:";
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Switchboard.Redis";

    private long _received, _published, _dropped, _reconnects;

    private void CreateInstruments(IMeterFactory? meterFactory)
    {
        // One broker per hub: its meter comes from the host's factory, so two servers in one process count apart.
        Meter meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        meter.CreateObservableCounter("switchboard_broker_messages_received_total", () => Volatile.Read(ref _received), description: "Messages received from other nodes (and this one) through Redis");
        meter.CreateObservableCounter("switchboard_broker_messages_published_total", () => Volatile.Read(ref _published), description: "Committed messages published to Redis");
        meter.CreateObservableCounter("switchboard_broker_publishes_dropped_total", () => Volatile.Read(ref _dropped), description: "Publishes dropped because Redis was unreachable (other nodes read those from the store)");
        meter.CreateObservableCounter("switchboard_broker_reconnects_total", () => Volatile.Read(ref _reconnects), description: "Connections to Redis restored after a failure");
    }

    private readonly ConnectionMultiplexer _redis;
    private readonly ISubscriber _subscriber;
    private readonly ILogger _logger;

    private RedisBroker(ConnectionMultiplexer redis, bool sharded, ILogger logger, IMeterFactory? meterFactory)
    {
        CreateInstruments(meterFactory);
        _redis = redis;
        _subscriber = redis.GetSubscriber();
        Sharded = sharded;
        _logger = logger;
        redis.ConnectionFailed += (_, e) => _logger.LogWarning("Redis connection to {Endpoint} failed ({Failure}); messages reach this node from the store until it is back", e.EndPoint, e.FailureType);
        redis.ConnectionRestored += (_, e) =>
        {
            Interlocked.Increment(ref _reconnects);
            _logger.LogWarning("Redis connection to {Endpoint} restored", e.EndPoint);
        };
    }

    /// <summary>The connection (shared with <see cref="RedisPresence"/>).</summary>
    internal ConnectionMultiplexer Connection => _redis;

    /// <summary>A channel for <paramref name="name"/>: sharded where the servers support it.</summary>
    internal RedisChannel ChannelFor(string name) => Sharded ? RedisChannel.Sharded(name) : RedisChannel.Literal(name);

    /// <summary>
    /// Fails at once while no Redis server is connected, instead of after StackExchange.Redis's command timeout (5 s): the
    /// callers run on a room's worker, which must not wait for an unreachable Redis.
    /// </summary>
    internal void ThrowIfDown()
    {
        if (!_redis.IsConnected)
        {
            throw new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None, "Redis is unreachable", null);
        }
    }

    /// <summary>True when rooms use sharded channels (Redis 7+).</summary>
    public bool Sharded { get; }

    /// <summary>True while at least one Redis server is connected.</summary>
    public bool IsConnected => _redis.IsConnected;

    /// <inheritdoc />
    public bool IsDistributed => true;

    /// <summary>
    /// Connects to Redis: <paramref name="configuration"/> is a StackExchange.Redis configuration string, e.g.
    /// <c>127.0.0.1:6379</c> or several cluster nodes <c>host1:7000,host2:7001</c>. Fails if no server answers within
    /// <paramref name="timeout"/>; once connected, later outages are survived (reconnect and resubscribe).
    /// </summary>
    public static async Task<RedisBroker> ConnectAsync(string configuration, TimeSpan timeout, ILogger? logger = null, IMeterFactory? meterFactory = null)
    {
        ConfigurationOptions options = ConfigurationOptions.Parse(configuration);
        options.AbortOnConnectFail = false; // keep trying after an outage, never give up for good
        options.ClientName = "switchboard";
        options.ConnectTimeout = (int)timeout.TotalMilliseconds;
        ConnectionMultiplexer redis = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
        using var wait = new CancellationTokenSource(timeout);
        while (!redis.IsConnected && !wait.IsCancellationRequested)
        {
            await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
        }

        if (!redis.IsConnected)
        {
            await redis.DisposeAsync().ConfigureAwait(false);
            throw new TimeoutException($"no Redis server answered at {configuration} within {timeout.TotalSeconds:0.#} s");
        }

        bool sharded = redis.GetEndPoints().Select(e => redis.GetServer(e)).Where(s => s.IsConnected).All(s => s.Version >= new Version(7, 0));
        return new RedisBroker(redis, sharded, logger ?? NullLogger.Instance, meterFactory);
    }

    private RedisChannel Channel(string room) => Sharded ? RedisChannel.Sharded(Prefix + room) : RedisChannel.Literal(Prefix + room);

    /// <inheritdoc />
    public async ValueTask PublishAsync(string room, StoredMessage message)
    {
        if (!_redis.IsConnected)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }

        try
        {
            await _subscriber.PublishAsync(Channel(room), Encode(message), CommandFlags.FireAndForget).ConfigureAwait(false);
            Interlocked.Increment(ref _published);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _dropped);
            _logger.LogDebug(ex, "Publishing to Redis failed");
        }
    }

    /// <inheritdoc />
    public async ValueTask<IAsyncDisposable> SubscribeAsync(string room, Action<StoredMessage> handler, CancellationToken cancellationToken = default)
    {
        ThrowIfDown(); // the room's worker waits for this; it retries on its next head check

        ChannelMessageQueue queue = await _subscriber.SubscribeAsync(Channel(room)).ConfigureAwait(false);
        queue.OnMessage(m =>
        {
            if (TryDecode(m.Message, out StoredMessage? message))
            {
                Interlocked.Increment(ref _received);
                handler(message!);
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
                // Redis is down: the subscription is gone with the connection anyway
            }
        }
    }

    private const string ControlChannelName = "switchboard:control";

    /// <inheritdoc />
    public async ValueTask PublishControlAsync(BrokerControl control)
    {
        if (!_redis.IsConnected)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }

        try
        {
            // Not sharded: a control message is for every node, whichever shard it is connected to.
            await _subscriber.PublishAsync(RedisChannel.Literal(ControlChannelName), control.Kind + "\n" + control.Subject, CommandFlags.FireAndForget).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _dropped);
            _logger.LogDebug(ex, "Publishing a control message to Redis failed");
        }
    }

    /// <inheritdoc />
    public async ValueTask<IAsyncDisposable> SubscribeControlAsync(Action<BrokerControl> handler, CancellationToken cancellationToken = default)
    {
        ChannelMessageQueue queue = await _subscriber.SubscribeAsync(RedisChannel.Literal(ControlChannelName)).ConfigureAwait(false);
        queue.OnMessage(m =>
        {
            string text = m.Message.ToString();
            int split = text.IndexOf('\n', StringComparison.Ordinal);
            if (split > 0)
            {
                handler(new BrokerControl(text[..split], text[(split + 1)..]));
            }
        });
        return new Subscription(queue);
    }

    /// <summary>The wire form: a small JSON object (offset, id, user, name, text, time in Unix milliseconds).</summary>
    internal static byte[] Encode(StoredMessage m)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(128 + m.Text.Length);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("o", m.Offset);
            w.WriteString("i", m.Id);
            w.WriteString("u", m.UserId);
            w.WriteString("n", m.Name);
            w.WriteString("t", m.Text);
            w.WriteNumber("ts", m.Time.ToUnixTimeMilliseconds());
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    internal static bool TryDecode(RedisValue value, out StoredMessage? message)
    {
        message = null;
        try
        {
            using JsonDocument doc = JsonDocument.Parse((ReadOnlyMemory<byte>)value);
            JsonElement r = doc.RootElement;
            message = new StoredMessage(r.GetProperty("o").GetInt64(), r.GetProperty("i").GetString()!, r.GetProperty("u").GetString()!,
                r.GetProperty("n").GetString()!, r.GetProperty("t").GetString()!, DateTimeOffset.FromUnixTimeMilliseconds(r.GetProperty("ts").GetInt64()));
            return true;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return false; // not ours: ignored (the store still has every message)
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await _redis.DisposeAsync().ConfigureAwait(false);
}
