using System.Diagnostics.Metrics;

namespace Switchboard.Server;

/// <summary>Server counters on the meter "Switchboard.Server": TCP connections held and refused at the connection limit.</summary>
internal static class ServerMetrics
{
    private static long s_open, s_refused;

    public static Meter Meter { get; } = new("Switchboard.Server");

    static ServerMetrics()
    {
        Meter.CreateObservableGauge("switchboard_tcp_connections", () => Volatile.Read(ref s_open), description: "TCP connections held (HTTP and WebSocket), bounded by Switchboard:MaxConnections");
        Meter.CreateObservableCounter("switchboard_connections_refused_total", () => Volatile.Read(ref s_refused), description: "Connections refused (503) because the server was at Switchboard:MaxConnections");
    }

    /// <summary>Touches the meter so its instruments exist from start-up (a scrape before the first connection sees them).</summary>
    public static void EnsureCreated() => _ = Meter;

    public static void ConnectionOpened() => Interlocked.Increment(ref s_open);

    public static void ConnectionClosed() => Interlocked.Decrement(ref s_open);

    public static void ConnectionRefused() => Interlocked.Increment(ref s_refused);
}
