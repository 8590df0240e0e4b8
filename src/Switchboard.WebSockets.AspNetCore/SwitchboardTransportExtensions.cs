using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Switchboard.WebSockets.AspNetCore.Sockets;

namespace Switchboard.WebSockets.AspNetCore;

/// <summary>Puts Switchboard's socket transport under Kestrel.</summary>
public static class SwitchboardTransportExtensions
{
    /// <summary>
    /// Kestrel accepts TCP and Unix domain socket connections with Switchboard's socket transport instead of its own:
    /// no pipes and no receive or send loop per connection, a receive buffer only while data is being read. It carries
    /// plain HTTP, TLS and HTTP/1.1 upgrades like Kestrel's; WebSocket connections taken by
    /// <see cref="WebSocketUpgradeRouter"/> cost about 2 KB less each while idle. Other endpoint kinds stay with
    /// Kestrel's transport.
    /// </summary>
    public static IWebHostBuilder UseSwitchboardSockets(this IWebHostBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        // Kestrel binds with the most recently registered transport that can bind the endpoint.
        return builder.ConfigureServices(s => s.AddSingleton<IConnectionListenerFactory, SocketTransportFactory>());
    }
}
