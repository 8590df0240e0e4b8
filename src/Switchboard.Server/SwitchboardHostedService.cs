using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Switchboard.Server;

/// <summary>
/// Owns the server's start and stop order in its host: the hub reads the store before the host takes traffic (hosted
/// services start before the web server); when the host stops, connections are closed with 1001 first (so the web
/// server does not wait for them), and once everything has stopped the store is flushed and closed.
/// </summary>
internal sealed class SwitchboardHostedService(SwitchboardRuntime runtime, IHostApplicationLifetime lifetime, IConfiguration configuration, ILoggerFactory loggers)
    : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        SwitchboardServerOptions options = runtime.Options;
        if (options.StoreFactory is null && options.Store.Equals("sqlite", StringComparison.OrdinalIgnoreCase)
            && WatchedDatabase.WatchedRoot(configuration, options.Database) is { } watched)
        {
            loggers.CreateLogger(SwitchboardServer.StartupCategory).LogWarning(
                "The SQLite database {Database} is under {Root}, which this app watches for configuration changes: every write to the database wakes the watcher. " +
                "Start the app with --hostBuilder:reloadConfigOnChange=false (or DOTNET_hostBuilder__reloadConfigOnChange=false), or keep the database elsewhere.",
                Path.GetFullPath(options.Database), watched);
        }

        await runtime.StartAsync(cancellationToken).ConfigureAwait(false);
        lifetime.ApplicationStopping.Register(runtime.CloseConnections);
    }

    /// <summary>Hosted services stop in reverse order: the web server (started last) has stopped when this runs.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => runtime.StopAsync();
}
