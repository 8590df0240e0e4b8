using System.Diagnostics.Metrics;

namespace Switchboard.WebSockets;

/// <summary>
/// Process-wide engine counters, published as observable instruments on the meter "Switchboard.WebSockets".
/// The hot path only does an interlocked add; the instruments read the totals when a collector asks.
/// </summary>
public static class WebSocketMetrics
{
    private static long s_opened, s_active, s_bytesIn, s_bytesOut, s_messagesIn, s_messagesOut, s_slowConsumers;

    /// <summary>The meter.</summary>
    public static Meter Meter { get; } = new("Switchboard.WebSockets");

    static WebSocketMetrics()
    {
        Meter.CreateObservableCounter("switchboard_connections_opened_total", () => Volatile.Read(ref s_opened), description: "WebSocket connections opened");
        Meter.CreateObservableGauge("switchboard_connections", () => Volatile.Read(ref s_active), description: "WebSocket connections open now");
        Meter.CreateObservableCounter("switchboard_bytes_received_total", () => Volatile.Read(ref s_bytesIn), description: "Bytes received on WebSocket connections");
        Meter.CreateObservableCounter("switchboard_bytes_sent_total", () => Volatile.Read(ref s_bytesOut), description: "Bytes sent on WebSocket connections");
        Meter.CreateObservableCounter("switchboard_messages_received_total", () => Volatile.Read(ref s_messagesIn), description: "WebSocket messages received");
        Meter.CreateObservableCounter("switchboard_messages_sent_total", () => Volatile.Read(ref s_messagesOut), description: "WebSocket data frames sent");
        Meter.CreateObservableCounter("switchboard_slow_consumer_disconnects_total", () => Volatile.Read(ref s_slowConsumers), description: "Connections closed because their outbound queue was full");
        Meter.CreateObservableGauge("switchboard_deflate_streams", () => Switchboard.Protocol.Extensions.DeflateStreams.Live, description: "Native zlib streams allocated for permessage-deflate (pooled ones included)");
    }

    /// <summary>Connections open now.</summary>
    public static long ActiveConnections => Volatile.Read(ref s_active);

    /// <summary>Slow-consumer disconnects so far.</summary>
    public static long SlowConsumerDisconnects => Volatile.Read(ref s_slowConsumers);

    internal static void Opened()
    {
        Interlocked.Increment(ref s_opened);
        Interlocked.Increment(ref s_active);
    }

    internal static void Closed() => Interlocked.Decrement(ref s_active);

    internal static void Received(long bytes) => Interlocked.Add(ref s_bytesIn, bytes);

    internal static void Sent(long bytes, int dataFrames)
    {
        Interlocked.Add(ref s_bytesOut, bytes);
        if (dataFrames > 0)
        {
            Interlocked.Add(ref s_messagesOut, dataFrames);
        }
    }

    internal static void MessageReceived() => Interlocked.Increment(ref s_messagesIn);

    internal static void SlowConsumer() => Interlocked.Increment(ref s_slowConsumers);
}
