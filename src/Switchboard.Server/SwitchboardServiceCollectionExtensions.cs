using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Switchboard.Protocol.Handshake;

namespace Switchboard.Server;

/// <summary>Switchboard inside any ASP.NET Core app: <c>builder.Services.AddSwitchboard(o => ...)</c>, then <c>app.MapSwitchboardHub()</c>.</summary>
public static class SwitchboardServiceCollectionExtensions
{
    /// <summary>
    /// Adds the hub, its store, broker and presence, and <see cref="ISwitchboardHubContext"/> as services, with options
    /// validated when the app starts (every problem named, like <c>switchboard serve</c> does); a hosted service reads
    /// the store before the app takes traffic and closes connections with 1001 when it stops.
    /// </summary>
    public static IServiceCollection AddSwitchboard(this IServiceCollection services, Action<SwitchboardServerOptions>? configure = null)
    {
        services.AddOptions<SwitchboardServerOptions>().BindConfiguration("Switchboard").Configure(o => configure?.Invoke(o)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SwitchboardServerOptions>, SwitchboardOptionsValidator>());
        return AddSwitchboardCore(services, sp => sp.GetRequiredService<IOptions<SwitchboardServerOptions>>().Value);
    }

    /// <summary>What every host registers, <c>switchboard serve</c> included (it passes options it already validated).</summary>
    internal static IServiceCollection AddSwitchboardCore(IServiceCollection services, Func<IServiceProvider, SwitchboardServerOptions> options)
    {
        services.AddMetrics();
        services.TryAddSingleton(sp => new SwitchboardRuntime(options(sp), sp.GetRequiredService<IMeterFactory>(), sp.GetRequiredService<ILoggerFactory>()));
        services.TryAddSingleton(sp => sp.GetRequiredService<SwitchboardRuntime>().Hub);
        services.TryAddSingleton<ISwitchboardHubContext>(sp => new SwitchboardHubContext(sp.GetRequiredService<SwitchboardRuntime>()));
        services.AddHostedService<SwitchboardHostedService>();
        HealthChecks.Add(services); // map them with MapHealthChecks (serve maps /healthz and /readyz)
        return services;
    }

    private sealed class SwitchboardOptionsValidator : IValidateOptions<SwitchboardServerOptions>
    {
        public ValidateOptionsResult Validate(string? name, SwitchboardServerOptions options)
        {
            string[] problems = [.. options.Validate()];
            return problems.Length == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}

/// <summary>Maps Switchboard's endpoints into an app that called <c>AddSwitchboard</c>.</summary>
public static class SwitchboardEndpointRouteBuilderExtensions
{
    /// <summary>The hub protocol (docs/protocol.md) at <paramref name="pattern"/>, behind the Origin and token rules.</summary>
    public static IEndpointConventionBuilder MapSwitchboardHub(this IEndpointRouteBuilder endpoints, string pattern = "/hub")
    {
        SwitchboardRuntime runtime = endpoints.ServiceProvider.GetRequiredService<SwitchboardRuntime>();
        return runtime.MapGuarded(endpoints, null, pattern, runtime.Endpoint(pattern, runtime.HubMessageSize), runtime.HubHandler).Endpoint!;
    }

    /// <summary>The classic chat contract (the seed programs' <c>/ws</c>) at <paramref name="pattern"/>.</summary>
    public static IEndpointConventionBuilder MapSwitchboardSeedChat(this IEndpointRouteBuilder endpoints, string pattern = "/ws")
    {
        SwitchboardRuntime runtime = endpoints.ServiceProvider.GetRequiredService<SwitchboardRuntime>();
        return runtime.MapGuarded(endpoints, null, pattern, runtime.Endpoint(pattern, runtime.HubMessageSize), runtime.SeedChatHandler).Endpoint!;
    }

    /// <summary>An exact echo at <paramref name="pattern"/>.</summary>
    public static IEndpointConventionBuilder MapSwitchboardEcho(this IEndpointRouteBuilder endpoints, string pattern = "/echo")
    {
        SwitchboardRuntime runtime = endpoints.ServiceProvider.GetRequiredService<SwitchboardRuntime>();
        return runtime.MapGuarded(endpoints, null, pattern, runtime.Endpoint(pattern, runtime.Options.MaxMessageSize), SwitchboardRuntime.EchoHandlerFor).Endpoint!;
    }
}
