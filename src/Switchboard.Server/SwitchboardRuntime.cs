using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Switchboard.Hub;
using Switchboard.Protocol;
using Switchboard.Protocol.Extensions;
using Switchboard.Protocol.Handshake;
using Switchboard.WebSockets;
using Switchboard.WebSockets.AspNetCore;

namespace Switchboard.Server;

/// <summary>
/// Everything one Switchboard server runs, whichever host it runs in (<c>switchboard serve</c> or an app that called
/// <c>AddSwitchboard</c>): the hub with its store, broker and presence, the heartbeat, the instruments, the open
/// connections, token validation, and the endpoints' handlers and rules. A singleton of its host's services.
/// </summary>
internal sealed class SwitchboardRuntime
{
    private readonly ILogger _logger;
    private readonly ILogger _hubLogger;
    private Timer? _retention;
    private Hub.Hub? _hub;

    public SwitchboardRuntime(SwitchboardServerOptions options, IMeterFactory meterFactory, ILoggerFactory loggers)
    {
        Options = options;
        _logger = loggers.CreateLogger("Switchboard.Server");
        // One heartbeat per server (not the process-wide default): every connection's deadlines, on the server's clock.
        Heartbeat = new WebSocketHeartbeat(options.Time, TimeSpan.FromSeconds(1));
        // Every instrument comes from the host's meter factory and exists from start-up: a scrape before the first
        // connection lists them all, at zero, and two servers in one process count apart.
        MeterFactory = meterFactory;
        WebSocketMetrics = new WebSocketMetrics(meterFactory);
        _hubLogger = loggers.CreateLogger("Switchboard.Hub");
        Tokens = options.Auth.Enabled ? new TokenService(options.Auth) : null;
        Compression = options.Compression
            ? new DeflateServerPolicy { ServerNoContextTakeover = !options.CompressionContextTakeover, ClientNoContextTakeover = !options.CompressionContextTakeover }
            : null;
    }

    public SwitchboardServerOptions Options { get; }

    /// <summary>The hub: created when the host starts (it opens the store and connects the broker then).</summary>
    public Hub.Hub Hub => _hub ?? throw new InvalidOperationException("The Switchboard server has not started: its hub opens the store and the broker when the host starts.");

    public WebSocketHeartbeat Heartbeat { get; }

    public IMeterFactory MeterFactory { get; }

    public WebSocketMetrics WebSocketMetrics { get; }

    public WebSocketConnectionRegistry Registry { get; } = new();

    public TokenService? Tokens { get; }

    private DeflateServerPolicy? Compression { get; }

    /// <summary>Hub commands are small (a publish carries at most MaxTextBytes of text): /hub and /ws accept no more.</summary>
    public long HubMessageSize => Math.Min(Options.MaxMessageSize, Options.Hub.EffectiveMaxCommandBytes);

    /// <summary>The settings of an endpoint's connections; <paramref name="name"/> is its metrics tag.</summary>
    public WebSocketEndpointOptions Endpoint(string name, long maxMessageSize) => new()
    {
        Connection = new WebSocketConnectionOptions
        {
            EndpointName = name,
            MaxMessageSize = maxMessageSize,
            KeepAliveInterval = Options.KeepAliveInterval == TimeSpan.Zero ? null : Options.KeepAliveInterval,
            KeepAliveTimeout = Options.KeepAliveTimeout,
            CloseTimeout = Options.CloseTimeout,
            CompressionLevel = Options.CompressionLevel,
            CompressionThreshold = Options.CompressionThreshold,
            Heartbeat = Heartbeat,
            Metrics = WebSocketMetrics,
        },
        Registry = Registry,
        Compression = Compression,
    };

    /// <summary>A <c>/hub</c> connection: the hub protocol, as the token's subject or the query's name.</summary>
    public WebSocketHandler HubHandler(Func<string, string?> query, Grant? grant)
    {
        HubIdentity identity = grant?.Identity ?? Identity.FromQuery(query("name"), query("user"));
        return new HubHandler(Hub, identity, _logger, grant is null ? null : c => Access(grant, c));
    }

    /// <summary>The rights a grant gives: a built-in token's (refreshable), or those of a principal the host app authenticated.</summary>
    private IHubAccess Access(Grant grant, WebSocketConnection connection) =>
        Tokens is not null ? new TokenAccess(Tokens, grant, connection) : new PrincipalAccess(grant, connection);

    /// <summary>A <c>/ws</c> connection: the classic chat contract.</summary>
    public WebSocketHandler SeedChatHandler(Func<string, string?> query, Grant? grant) =>
        new SeedChatHandler(Hub, _logger, grant, grant is null ? null : c => Access(grant, c));

    /// <summary>An echo connection.</summary>
    public static WebSocketHandler EchoHandlerFor(Func<string, string?> query, Grant? grant) => EchoHandler.Instance;

    /// <summary>
    /// Maps a WebSocket endpoint behind the Origin allow-list and, when authentication is on, a token check — both
    /// decided on the HTTP handshake, before any upgrade (403 / 401 with the reason). With a <paramref name="router"/>,
    /// upgrades are taken at the connection level when everything checks out; otherwise (or without one) the HTTP
    /// endpoint answers with the same rules. Returns the HTTP handler and, when mapped, its endpoint.
    /// </summary>
    public (RequestDelegate Http, IEndpointConventionBuilder? Endpoint) MapGuarded(IEndpointRouteBuilder endpoints, WebSocketUpgradeRouter? router, string path,
        WebSocketEndpointOptions endpoint, Func<Func<string, string?>, Grant?, WebSocketHandler> handler, bool mapHttpEndpoint = true)
    {
        SwitchboardServerOptions options = Options;
        TokenService? tokens = Tokens;
        ServerHandshakeOptions handshake = endpoint.ToHandshakeOptions();
        router?.Map(path, async request =>
        {
            string? origin = request.Headers.Get("Origin");
            if (origin is not null && !SwitchboardServer.OriginAllowed(origin, request.Headers.Get("Host") ?? string.Empty, request.Headers.Get("X-Forwarded-Proto"), options.Auth))
            {
                return null;
            }

            Grant? grant = null;
            if (tokens is not null)
            {
                (grant, _) = await tokens.ValidateAsync(TokenService.From(request.Headers.Get("Authorization"), request.Query("access_token")));
                if (grant is null)
                {
                    return null;
                }
            }

            return handler(request.Query, grant);
        }, endpoint);

        async Task Http(HttpContext ctx)
        {
            string? origin = ctx.Request.Headers.Origin;
            bool appAuthenticated = tokens is null && ctx.User.Identity?.IsAuthenticated == true;
            if (origin is not null && !SwitchboardServer.OriginAllowed(origin, ctx.Request.Host.Value ?? string.Empty, ctx.Request.Headers["X-Forwarded-Proto"].ToString(), options.Auth, appAuthenticated))
            {
                await Refuse(ctx, 403, $"Origin '{origin}' is not allowed to connect.");
                return;
            }

            Grant? grant = null;
            if (tokens is not null)
            {
                (grant, string? error) = await tokens.ValidateAsync(TokenService.FromRequest(ctx.Request));
                if (grant is null)
                {
                    ctx.Response.Headers.WWWAuthenticate = $"Bearer error=\"invalid_token\", error_description=\"{error}\"";
                    await Refuse(ctx, 401, error!);
                    return;
                }
            }
            else if (appAuthenticated)
            {
                // The host app authenticated this request with its own scheme (and its policies allowed it here).
                (grant, string? error) = AppIdentity.From(ctx.User, options.Time);
                if (grant is null)
                {
                    await Refuse(ctx, 403, error!);
                    return;
                }
            }

            await WebSocketEndpointRouteBuilderExtensions.HandleAsync(ctx, c => handler(name => c.Request.Query[name].ToString() is { Length: > 0 } v ? v : null, grant), handshake, endpoint.Connection, endpoint.Registry);
        }

        return (Http, mapHttpEndpoint ? endpoints.Map(path, (RequestDelegate)Http) : null);
    }

    private static Task Refuse(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        return ctx.Response.WriteAsync(message + "\n");
    }

    /// <summary>
    /// Connects the broker, opens the store (asynchronously: a host's start-up is not blocked on a thread), creates the
    /// hub, reads what the store knows (rooms) and starts the periodic retention. A store or broker that cannot be
    /// reached fails the host's start with a <see cref="ServerConfigurationException"/> that says which and why.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        IBroker broker = await Options.ConnectBrokerAsync(_hubLogger, MeterFactory).ConfigureAwait(false);
        IMessageStore store;
        try
        {
            store = await Options.OpenStoreAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await broker.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        StoreMetrics.Observe(MeterFactory, store);
        _hub = new Hub.Hub(store, Options.Hub, _hubLogger, broker, SwitchboardServerOptions.CreatePresence(broker, Options.NodeTimeout, _hubLogger), new HubMetrics(MeterFactory), EngineDeliveryBatching.Instance);
        await _hub.InitializeAsync(cancellationToken).ConfigureAwait(false);
        _retention = new Timer(_ => _ = ApplyRetentionAsync(), null, Options.RetentionInterval, Options.RetentionInterval);
    }

    /// <summary>The host is stopping: every connection is closed with 1001 (before the server stops waiting for them).</summary>
    public void CloseConnections()
    {
        _retention?.Dispose();
        _logger.LogInformation("Shutting down: closing {Count} connections with 1001", Registry.Count);
        Registry.CloseAllAsync(WebSocketCloseCode.GoingAway, "Server shutting down", Options.CloseTimeout).GetAwaiter().GetResult();
    }

    /// <summary>The host has stopped: the store is flushed and closed, the heartbeat stops.</summary>
    public async Task StopAsync()
    {
        _retention?.Dispose();
        if (_hub is not null)
        {
            await _hub.DisposeAsync().ConfigureAwait(false);
        }

        Heartbeat.Dispose();
    }

    private async Task ApplyRetentionAsync()
    {
        try
        {
            await Hub.ApplyRetentionAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Applying retention failed; will retry");
        }
    }
}
