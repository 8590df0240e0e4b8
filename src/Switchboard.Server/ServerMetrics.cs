using System.Diagnostics.Metrics;

namespace Switchboard.Server;

/// <summary>One server's counters on a meter "Switchboard.Server" from the host's <see cref="IMeterFactory"/>: TCP connections held and refused at the connection limit.</summary>
internal sealed class ServerMetrics
{
    public const string MeterName = "Switchboard.Server";

    private long _open, _refused;

    public ServerMetrics(IMeterFactory meterFactory)
    {
        Meter meter = meterFactory.Create(MeterName);
        meter.CreateObservableGauge("switchboard_tcp_connections", () => Volatile.Read(ref _open), description: "TCP connections held (HTTP and WebSocket), bounded by Switchboard:MaxConnections");
        meter.CreateObservableCounter("switchboard_connections_refused_total", () => Volatile.Read(ref _refused), description: "Connections refused (503) because the server was at Switchboard:MaxConnections");
    }

    public void ConnectionOpened() => Interlocked.Increment(ref _open);

    public void ConnectionClosed() => Interlocked.Decrement(ref _open);

    public void ConnectionRefused() => Interlocked.Increment(ref _refused);
}
