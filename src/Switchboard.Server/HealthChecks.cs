using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Switchboard.Server;

/// <summary>
/// The server's health checks (Microsoft.Extensions.Diagnostics.HealthChecks): <c>/healthz</c> is liveness (the process
/// answers: restart it if not), <c>/readyz</c> readiness (the store and the broker answer: send it traffic only then).
/// Both answer in plain text, one line per check, 200 or 503.
/// </summary>
internal static class HealthChecks
{
    /// <summary>The tag of the checks <c>/readyz</c> runs.</summary>
    public const string Ready = "ready";

    /// <summary>Registers the store and broker checks (tagged <see cref="Ready"/>), which ask the host's hub.</summary>
    public static void Add(Microsoft.Extensions.DependencyInjection.IServiceCollection services) =>
        Microsoft.Extensions.DependencyInjection.HealthCheckServiceCollectionExtensions.AddHealthChecks(services)
            .AddCheck<StoreCheck>("store", tags: [Ready])
            .AddCheck<BrokerCheck>("broker", tags: [Ready]);

    private sealed class StoreCheck(SwitchboardRuntime runtime) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) => StoreAsync(runtime.Hub, cancellationToken);
    }

    private sealed class BrokerCheck(SwitchboardRuntime runtime) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) => Task.FromResult(Broker(runtime.Hub));
    }

    public static async Task<HealthCheckResult> StoreAsync(Hub.Hub hub, CancellationToken cancellationToken) => hub.Store switch
    {
        Stores.Postgres.PostgresMessageStore pg => await pg.PingAsync(TimeSpan.FromSeconds(2)).WaitAsync(cancellationToken).ConfigureAwait(false)
            ? HealthCheckResult.Healthy("ok (postgres)")
            : HealthCheckResult.Unhealthy("down (postgres does not answer)"),
        _ => HealthCheckResult.Healthy("ok"),
    };

    public static HealthCheckResult Broker(Hub.Hub hub) => hub.Broker switch
    {
        Redis.RedisBroker redis => redis.IsConnected
            ? HealthCheckResult.Healthy("ok (redis)")
            : HealthCheckResult.Unhealthy("down (redis unreachable; messages from other servers come from the store meanwhile)"),
        _ => HealthCheckResult.Healthy("ok (this server only)"),
    };

    /// <summary>"ok" or "unavailable", then "name: description" per check.</summary>
    public static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        var text = new System.Text.StringBuilder(report.Status == HealthStatus.Unhealthy ? "unavailable\n" : "ok\n");
        foreach (var (name, entry) in report.Entries)
        {
            text.Append(name).Append(": ").Append(entry.Description ?? entry.Status.ToString()).Append('\n');
        }

        return context.Response.WriteAsync(text.ToString());
    }
}
