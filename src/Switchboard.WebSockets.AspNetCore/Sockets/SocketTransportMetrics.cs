using System.Diagnostics.Metrics;

namespace Switchboard.WebSockets.AspNetCore.Sockets;

/// <summary>
/// The socket transport's instruments (meter "Switchboard.Transport"): what its connections hold in receive buffers,
/// and how many were aborted for holding more than the bound. The figures are the process's (the transport's epoll
/// set and buffers are shared by every server in it), as <c>switchboard_deflate_streams</c> is.
/// </summary>
internal static class SocketTransportMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Switchboard.Transport";

    private static long s_receiveBufferBytes;
    private static long s_boundAborts;

    /// <summary>Bytes of receive buffers held by the transport's connections now.</summary>
    public static long ReceiveBufferBytes => Volatile.Read(ref s_receiveBufferBytes);

    /// <summary>Connections aborted because they held more unconsumed bytes than the bound.</summary>
    public static long BoundAborts => Volatile.Read(ref s_boundAborts);

    public static void BufferRented(int bytes) => Interlocked.Add(ref s_receiveBufferBytes, bytes);

    public static void BufferReturned(int bytes) => Interlocked.Add(ref s_receiveBufferBytes, -bytes);

    public static void BoundExceeded() => Interlocked.Increment(ref s_boundAborts);

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/> (or a meter of its own).</summary>
    public static Meter CreateMeter(IMeterFactory? meterFactory)
    {
        Meter meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        meter.CreateObservableGauge("switchboard_transport_receive_buffer_bytes", () => ReceiveBufferBytes,
            description: "Bytes of receive buffers held by the socket transport's connections (bound: 1 MiB unconsumed per connection)");
        meter.CreateObservableCounter("switchboard_transport_read_bound_aborts_total", () => BoundAborts,
            description: "Connections aborted for holding more than 1 MiB received and not consumed");
        return meter;
    }
}
