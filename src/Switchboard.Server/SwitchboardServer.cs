using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Switchboard.Hub;
using Switchboard.Protocol;
using Switchboard.Protocol.Handshake;
using Switchboard.Protocol.Extensions;
using Switchboard.WebSockets;
using Switchboard.WebSockets.AspNetCore;

namespace Switchboard.Server;

/// <summary>Builds and runs the Switchboard server.</summary>
public static class SwitchboardServer
{
    /// <summary>Builds the app: Kestrel (HTTP/1.1) on <see cref="SwitchboardServerOptions.Urls"/> with /echo and /healthz.</summary>
    public static WebApplication Build(SwitchboardServerOptions options, Action<ILoggingBuilder>? logging = null)
    {
        string[] problems = [.. options.Validate()];
        if (problems.Length > 0)
        {
            throw new ServerConfigurationException(string.Join(Environment.NewLine, problems));
        }

        // The host watches its appsettings.json for changes by default, and that watch covers the whole content root
        // (the working directory) and everything under it: with the database there (the default "switchboard.db"), each
        // log write woke the watcher's thread, 17–30% of the CPU of durable publishing over 100 rooms. The settings
        // are read once at start (SwitchboardServerOptions.Load), so nothing here reloads.
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        if (logging is null)
        {
            if (options.LogFormat.Equals("json", StringComparison.OrdinalIgnoreCase))
            {
                builder.Logging.AddJsonConsole(o => o.IncludeScopes = true);
            }
            else
            {
                builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
                ScopelessLoggerProvider.WrapConsole(builder.Services); // scopes are never printed in this format
            }

            builder.Logging.SetMinimumLevel(options.LogLevel);
            builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
            builder.Logging.AddFilter(StartupCategory, LogLevel.Information);
            // A start that fails (e.g. the port is taken) surfaces as an exception the program reports in one line.
            builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        }
        else
        {
            logging(builder.Logging);
        }

        var router = new WebSocketUpgradeRouter { HandshakeTimeout = options.HandshakeTimeout };
        SwitchboardServiceCollectionExtensions.AddSwitchboardCore(builder.Services, _ => options);
        Telemetry.AddIfConfigured(builder, options.Otlp);
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi(ServerApi.Document, o => o.ShouldInclude = d => d.GroupName == ServerApi.Document);
        int maxConnections = options.MaxConnections ?? ConnectionLimiter.DefaultLimit();
        ConnectionLimiter? limiter = null; // needs the app's logger: created once the app is built, before it listens
        builder.WebHost.UseUrls(options.Urls);
        builder.WebHost.UseSockets(s => s.UnsafePreferInlineScheduling = options.InlineIo);
        if (options.Transport.Equals("switchboard", StringComparison.OrdinalIgnoreCase))
        {
            builder.WebHost.UseSwitchboardSockets(); // Kestrel's sockets stay registered for endpoint kinds it does not take
        }
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.RequestHeadersTimeout = options.HandshakeTimeout; // bounds a handshake that never finishes
            k.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            options.Kestrel?.GetSection("Limits").Bind(k.Limits); // Kestrel:Limits:* from configuration win over the above
            k.ConfigureEndpointDefaults(l =>
            {
                l.Protocols = HttpProtocols.Http1;
                l.Use(next => connection => limiter!.HandleAsync(connection, next));
                if (options.FastUpgrade)
                {
                    l.Use(next => connection => router.HandleAsync(connection, next));
                }
            });
        });

        WebApplication app = builder.Build();
        // The runtime's hub opens the store and connects the broker when the host starts (its hosted service starts before
        // the web server): one that cannot be reached fails StartAsync, in one line, before anything listens.
        SwitchboardRuntime runtime = app.Services.GetRequiredService<SwitchboardRuntime>();
        router.Heartbeat = runtime.Heartbeat;
        limiter = new ConnectionLimiter(maxConnections, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Switchboard.Server.Connections"), options.Time,
            new ServerMetrics(runtime.MeterFactory));
        ILogger hubLogger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Switchboard.Server");
        runtime.MapGuarded(app, router, "/hub", runtime.Endpoint("/hub", runtime.HubMessageSize), runtime.HubHandler);
        runtime.MapGuarded(app, router, "/ws", runtime.Endpoint("/ws", runtime.HubMessageSize), runtime.SeedChatHandler);
        // Every WebSocket endpoint follows the same rules: with authentication on, /echo needs a token and an allowed Origin too.
        runtime.MapGuarded(app, router, "/echo", runtime.Endpoint("/echo", options.MaxMessageSize), SwitchboardRuntime.EchoHandlerFor);
        // A WebSocket upgrade to "/" is an exact echo too (what the seed programs that dial ws://host:port expect); a
        // plain GET of "/" still serves the chat UI, so "/" is no endpoint: upgrades are taken before the static files.
        RequestDelegate rootEcho = runtime.MapGuarded(app, router, "/", runtime.Endpoint("/", options.MaxMessageSize), SwitchboardRuntime.EchoHandlerFor, mapHttpEndpoint: false).Http;
        app.Use(next => ctx => ctx.Request.Path == "/" && HeaderTokens.Contains(ctx.Request.Headers.Upgrade.ToString(), "websocket") ? rootEcho(ctx) : next(ctx));
        ServerApi.Map(app, runtime, options.Api);
        if (options.Api.Keys.Count > 0)
        {
            app.MapOpenApi(); // /openapi/v1.json: the server API's operations
        }

        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = HealthChecks.WriteAsync });
        app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = c => c.Tags.Contains(HealthChecks.Ready), ResponseWriter = HealthChecks.WriteAsync });
        app.MapGet("/api/info", () => Results.Json(new { protocol = HubProtocol.Version, authEnabled = options.Auth.Enabled }));
        string webRoot = Path.Combine(AppContext.BaseDirectory, "wwwroot");
        if (Directory.Exists(webRoot))
        {
            var files = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(webRoot);
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions
            {
                FileProvider = files,
                OnPrepareResponse = c =>
                {
                    c.Context.Response.Headers.CacheControl = "no-cache";
                    // The browser module is for any page, from any origin (a module script from another origin needs CORS);
                    // who may open a WebSocket is still decided by the Origin rules of the endpoints.
                    c.Context.Response.Headers.AccessControlAllowOrigin = "*";
                },
            });
        }
        var exporter = new PrometheusExporter(runtime.MeterFactory);
        app.MapGet("/metrics", (HttpContext ctx) => MetricsAccess(ctx, options) is { } refusal
            ? refusal
            : Results.Text(exporter.Scrape(), "text/plain; version=0.0.4; charset=utf-8"));
        ILogger startup = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(StartupCategory);
        app.Lifetime.ApplicationStarted.Register(() => LogStartup(startup, app, options, maxConnections));
        if (!options.Auth.Enabled && ListensBeyondLoopback(options.Urls))
        {
            hubLogger.LogWarning("Authentication is off and the server listens on {Urls}: anyone who can reach it can connect under any name and user id (see the README, Security). Set Switchboard:Auth:Enabled for a public deployment.", options.Urls);
        }

        app.Lifetime.ApplicationStopped.Register(exporter.Dispose);
        return app;
    }

    /// <summary>
    /// The Origin rule. Without an allow-list and with authentication on, only the server's own origin: same scheme, host
    /// and port. The scheme is the one the client used: http, or what a TLS-terminating proxy says in
    /// <c>X-Forwarded-Proto</c> (a browser cannot set that header on a WebSocket request, and the Origin check only
    /// defends against browsers: any other client can send whatever Origin it likes).
    /// </summary>
    /// <param name="origin">The request's Origin header.</param>
    /// <param name="host">The request's Host header.</param>
    /// <param name="forwardedProto">X-Forwarded-Proto, when a proxy sent one.</param>
    /// <param name="auth">The authentication settings (allow-list, built-in tokens on or off).</param>
    /// <param name="credentials">
    /// The request carries credentials the browser sends by itself (the host app's cookie or other scheme): then, as
    /// with the built-in tokens, only the allowed origins may use them — cross-site WebSocket hijacking.
    /// </param>
    internal static bool OriginAllowed(string origin, string host, string? forwardedProto, AuthOptions auth, bool credentials = false)
    {
        if (auth.AllowedOrigins.Count > 0)
        {
            return auth.AllowedOrigins.Any(o => string.Equals(o.TrimEnd('/'), origin, StringComparison.OrdinalIgnoreCase));
        }

        if (!auth.Enabled && !credentials)
        {
            return true;
        }

        // Authentication on and no list: only the server's own origin (the page it serves).
        string scheme = string.IsNullOrEmpty(forwardedProto) ? "http" : forwardedProto.Split(',')[0].Trim().ToLowerInvariant();
        return scheme is "http" or "https" &&
               Uri.TryCreate(origin, UriKind.Absolute, out Uri? o) && o.Scheme == scheme && o.AbsolutePath == "/" &&
               Uri.TryCreate($"{scheme}://{host}/", UriKind.Absolute, out Uri? own) &&
               string.Equals(o.Host, own.Host, StringComparison.OrdinalIgnoreCase) && o.Port == own.Port;
    }

    internal const string StartupCategory = "Switchboard.Server.Startup";

    /// <summary>What a newcomer needs to see once the server listens: every endpoint's full URL, the store, auth, compression.</summary>
    private static void LogStartup(ILogger logger, WebApplication app, SwitchboardServerOptions options, int maxConnections)
    {
        foreach (string address in GetAddresses(app))
        {
            string http = address.TrimEnd('/');
            string ws = "ws" + http[4..];
            logger.LogInformation("Chat UI {Http}/ · hub {Ws}/hub · seed chat {Ws}/ws · echo {Ws}/echo and {Ws}/ · {Http}/healthz · {Http}/metrics",
                http, ws, ws, ws, ws, http, http);
        }

        string store = options.StoreFactory is not null ? "custom"
            : options.Store.ToLowerInvariant() switch
            {
                "memory" => "memory (nothing is kept after a restart)",
                "postgres" => "postgres",
                _ => $"sqlite {Path.GetFullPath(options.Database)}",
            };
        if (options.Broker.Equals("redis", StringComparison.OrdinalIgnoreCase))
        {
            store += $" · broker: redis {options.Redis}";
        }

        logger.LogInformation("Store: {Store} · authentication: {Auth} · compression: {Compression} · max connections: {Max}",
            store,
            options.Auth.Enabled ? "on (JWT, HS256)" : "off (anyone may connect under any name)",
            options.Compression ? $"permessage-deflate, level {options.CompressionLevel}, from {options.CompressionThreshold} bytes" : "off",
            maxConnections);
    }

    /// <summary>
    /// /metrics: with <see cref="SwitchboardServerOptions.MetricsToken"/> set, only for <c>Authorization: Bearer</c> that
    /// token; without one, public only while authentication is off (a server that checks who connects does not show its
    /// traffic to anyone who asks). Null when allowed, else the refusal.
    /// </summary>
    private static IResult? MetricsAccess(HttpContext ctx, SwitchboardServerOptions options)
    {
        if (!string.IsNullOrEmpty(options.MetricsToken))
        {
            string presented = ctx.Request.Headers.Authorization.ToString();
            byte[] expected = System.Text.Encoding.UTF8.GetBytes("Bearer " + options.MetricsToken);
            return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(presented), expected)
                ? null
                : Results.Text("/metrics needs Authorization: Bearer <Switchboard:MetricsToken>.\n", statusCode: 401);
        }

        return options.Auth.Enabled
            ? Results.Text("/metrics is off while authentication is on and no Switchboard:MetricsToken is set.\n", statusCode: 403)
            : null;
    }

    /// <summary>True when an address in <paramref name="urls"/> is not a loopback address (reachable from other machines).</summary>
    internal static bool ListensBeyondLoopback(string urls)
    {
        foreach (string url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string host = Uri.TryCreate(url.Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out Uri? u)
                ? u.Host.Trim('[', ']') : url;
            bool loopback = host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ||
                            (System.Net.IPAddress.TryParse(host, out System.Net.IPAddress? ip) && System.Net.IPAddress.IsLoopback(ip));
            if (!loopback)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The hub an app built by <see cref="Build"/> (or one that called <c>AddSwitchboard</c>) runs.</summary>
    public static Hub.Hub GetHub(WebApplication app) => app.Services.GetService<Hub.Hub>() ?? throw new InvalidOperationException("Not a Switchboard app.");

    /// <summary>The addresses the server actually listens on (resolves port 0).</summary>
    public static IReadOnlyList<string> GetAddresses(WebApplication app) =>
        [.. app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? []];
}

/// <summary>/echo: sends every message back exactly as received, text as text and binary as binary.</summary>
internal sealed class EchoHandler : WebSocketHandler
{
    public static EchoHandler Instance { get; } = new();

    public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
    {
        connection.Send(message.Type, message.Data);
        return ValueTask.CompletedTask;
    }
}
