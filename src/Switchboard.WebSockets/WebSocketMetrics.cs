using System.Diagnostics.Metrics;

namespace Switchboard.WebSockets;

/// <summary>
/// Engine counters for the connections whose options name this instance, on a meter "Switchboard.WebSockets" created by
/// the host's <see cref="IMeterFactory"/> (two servers in one process count apart). The hot path only does an
/// interlocked add; the observable instruments read the totals when a collector asks.
/// </summary>
public sealed class WebSocketMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Switchboard.WebSockets";

    private readonly bool _ownsMeter;
    private readonly Counter<long> _closed;
    private long _opened, _active, _bytesIn, _bytesOut, _messagesIn, _messagesOut, _slowConsumers;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/> (or a meter of its own when null).</summary>
    public WebSocketMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        Meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        Meter.CreateObservableCounter("switchboard_connections_opened_total", () => Volatile.Read(ref _opened), description: "WebSocket connections opened");
        Meter.CreateObservableGauge("switchboard_connections", () => Volatile.Read(ref _active), description: "WebSocket connections open now");
        Meter.CreateObservableCounter("switchboard_bytes_received_total", () => Volatile.Read(ref _bytesIn), description: "Bytes received on WebSocket connections");
        Meter.CreateObservableCounter("switchboard_bytes_sent_total", () => Volatile.Read(ref _bytesOut), description: "Bytes sent on WebSocket connections");
        Meter.CreateObservableCounter("switchboard_messages_received_total", () => Volatile.Read(ref _messagesIn), description: "WebSocket messages received");
        Meter.CreateObservableCounter("switchboard_messages_sent_total", () => Volatile.Read(ref _messagesOut), description: "WebSocket data frames sent");
        Meter.CreateObservableCounter("switchboard_slow_consumer_disconnects_total", () => Volatile.Read(ref _slowConsumers), description: "Connections closed because their outbound queue was full");
        _closed = Meter.CreateCounter<long>("switchboard_connections_closed_total", description: "WebSocket connections ended, by endpoint and close code (1006: dropped without a close frame)");
        // Native zlib memory is the process's, whoever allocated it: this gauge is the one process-wide figure.
        Meter.CreateObservableGauge("switchboard_deflate_streams", () => Protocol.Extensions.DeflateStreams.Live, description: "Native zlib streams allocated for permessage-deflate in this process (pooled ones included)");
    }

    /// <summary>The meter.</summary>
    public Meter Meter { get; }

    /// <summary>Connections open now.</summary>
    public long ActiveConnections => Volatile.Read(ref _active);

    /// <summary>Slow-consumer disconnects so far.</summary>
    public long SlowConsumerDisconnects => Volatile.Read(ref _slowConsumers);

    internal void Opened()
    {
        Interlocked.Increment(ref _opened);
        Interlocked.Increment(ref _active);
    }

    internal void Closed(string? endpoint, ushort code)
    {
        Interlocked.Decrement(ref _active);
        if (_closed.Enabled)
        {
            // Low cardinality by construction: endpoints are the host's paths, codes a small set.
            _closed.Add(1, new KeyValuePair<string, object?>("endpoint", endpoint ?? "other"), new KeyValuePair<string, object?>("code", code));
        }
    }

    internal void Received(long bytes) => Interlocked.Add(ref _bytesIn, bytes);

    internal void Sent(long bytes, int dataFrames)
    {
        Interlocked.Add(ref _bytesOut, bytes);
        if (dataFrames > 0)
        {
            Interlocked.Add(ref _messagesOut, dataFrames);
        }
    }

    internal void MessageReceived() => Interlocked.Increment(ref _messagesIn);

    internal void SlowConsumer() => Interlocked.Increment(ref _slowConsumers);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsMeter)
        {
            Meter.Dispose();
        }
    }
}
