using Microsoft.Extensions.Hosting;

namespace Switchboard.Server;

/// <summary>
/// Owns the server's start and stop order in its host: the hub reads the store before the host takes traffic (hosted
/// services start before the web server); when the host stops, connections are closed with 1001 first (so the web
/// server does not wait for them), and once everything has stopped the store is flushed and closed.
/// </summary>
internal sealed class SwitchboardHostedService(SwitchboardRuntime runtime, IHostApplicationLifetime lifetime) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await runtime.StartAsync(cancellationToken).ConfigureAwait(false);
        lifetime.ApplicationStopping.Register(runtime.CloseConnections);
    }

    /// <summary>Hosted services stop in reverse order: the web server (started last) has stopped when this runs.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => runtime.StopAsync();
}
