using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace Switchboard.WebSockets.AspNetCore.Sockets;

/// <summary>
/// Kestrel's transport for TCP and Unix domain socket endpoints, made for many long-lived, mostly idle connections.
/// Other endpoint kinds (e.g. an inherited file handle), and systems without epoll, are left to the next transport
/// registered (Kestrel's).
/// </summary>
internal sealed class SocketTransportFactory(IMeterFactory? meterFactory = null) : IConnectionListenerFactory, IConnectionListenerFactorySelector, IDisposable
{
    private readonly Meter _meter = SocketTransportMetrics.CreateMeter(meterFactory);

    /// <summary>The listen backlog (as Kestrel's socket transport).</summary>
    internal const int Backlog = 512;

    /// <summary>
    /// Received bytes a connection may hold unconsumed (as Kestrel's default <c>MaxReadBufferSize</c>). Kestrel's HTTP
    /// layer and the engine consume as they parse, so only a misbehaving application reaches it; it is then aborted.
    /// </summary>
    internal const int MaxReadBuffer = 1024 * 1024;

    public bool CanBind(EndPoint endpoint) => EpollReadiness.IsSupported && endpoint is IPEndPoint or UnixDomainSocketEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IConnectionListener>(SocketListener.Bind(endpoint, Backlog, MaxReadBuffer));

    public void Dispose()
    {
        if (meterFactory is null)
        {
            _meter.Dispose(); // a factory's meters are the factory's to dispose
        }
    }
}
