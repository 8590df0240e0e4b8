using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using Switchboard.Protocol;
using Switchboard.Protocol.Handshake;

namespace Switchboard.WebSockets.AspNetCore;

/// <summary>Settings for a mapped WebSocket endpoint.</summary>
public sealed class WebSocketEndpointOptions
{
    /// <summary>Subprotocols the endpoint speaks, in order of preference.</summary>
    public IReadOnlyList<string> SubProtocols { get; init; } = [];

    /// <summary>Decides on the Origin header (null: no Origin, not a browser). Null accepts all origins.</summary>
    public Func<string?, bool>? OriginPolicy { get; init; }

    /// <summary>Settings for each accepted connection.</summary>
    public WebSocketConnectionOptions Connection { get; init; } = new();

    /// <summary>
    /// permessage-deflate (RFC 7692): what the endpoint accepts from clients' offers. Null (the default) declines
    /// compression. <c>ServerNoContextTakeover</c> lets one compressed frame be shared by every connection a
    /// <see cref="PreparedFrame"/> goes to and keeps no compressor per connection; <c>ClientNoContextTakeover</c>
    /// keeps no decompressor per connection. Level and threshold: <see cref="WebSocketConnectionOptions"/>.
    /// </summary>
    public Protocol.Extensions.DeflateServerPolicy? Compression { get; init; }

    /// <summary>The opening-handshake settings these endpoint settings imply (subprotocols, Origin policy, compression).</summary>
    public ServerHandshakeOptions ToHandshakeOptions() =>
        new() { SubProtocols = SubProtocols, OriginPolicy = OriginPolicy, Compression = Compression };

    /// <summary>Tracks this endpoint's open connections (e.g. to close them all at shutdown).</summary>
    public WebSocketConnectionRegistry? Registry { get; init; }
}

/// <summary>The open connections of one or more endpoints.</summary>
public sealed class WebSocketConnectionRegistry : IWebSocketConnectionTracker
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<WebSocketConnection, byte> _connections = new();

    /// <summary>Connections currently open.</summary>
    public int Count => _connections.Count;

    internal void Add(WebSocketConnection c) => _connections.TryAdd(c, 0);

    internal void Remove(WebSocketConnection c) => _connections.TryRemove(c, out _);

    void IWebSocketConnectionTracker.Remove(WebSocketConnection connection) => Remove(connection);

    /// <summary>
    /// Starts the closing handshake on every connection with <paramref name="code"/> and waits until all have
    /// ended or <paramref name="timeout"/> passed (then aborts the rest).
    /// </summary>
    public async Task CloseAllAsync(ushort code, string reason, TimeSpan timeout)
    {
        WebSocketConnection[] all = [.. _connections.Keys];
        foreach (WebSocketConnection c in all)
        {
            c.Close(code, reason);
        }

        Task done = Task.WhenAll(all.Select(c => c.Completion));
        if (await Task.WhenAny(done, Task.Delay(timeout)).ConfigureAwait(false) != done)
        {
            foreach (WebSocketConnection c in all)
            {
                c.Abort();
            }
        }
    }
}

/// <summary>Maps Switchboard WebSocket endpoints into an ASP.NET Core app.</summary>
public static class WebSocketEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps <paramref name="pattern"/> to a WebSocket endpoint. A valid upgrade request gets 101 and runs the
    /// engine on the upgraded connection with a handler from <paramref name="handlerFactory"/>; anything else
    /// gets the handshake's status (400, 403, 405 or 426) and a one-line text body saying what was wrong.
    /// </summary>
    public static IEndpointConventionBuilder MapWebSocket(this IEndpointRouteBuilder endpoints, string pattern,
        Func<HttpContext, WebSocketHandler> handlerFactory, WebSocketEndpointOptions? options = null)
    {
        options ??= new WebSocketEndpointOptions();
        ServerHandshakeOptions handshakeOptions = options.ToHandshakeOptions();
        ILogger logger = endpoints.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("Switchboard.WebSockets");
        WebSocketConnectionOptions connectionOptions = options.Connection.Logger is null
            ? CopyWithLogger(options.Connection, logger)
            : options.Connection;
        return endpoints.Map(pattern, context => HandleAsync(context, handlerFactory, handshakeOptions, connectionOptions, options.Registry));
    }

    /// <summary>Accepts (or refuses) a WebSocket upgrade on <paramref name="context"/> and runs the connection to its end.</summary>
    public static async Task HandleAsync(HttpContext context, Func<HttpContext, WebSocketHandler> handlerFactory,
        ServerHandshakeOptions handshakeOptions, WebSocketConnectionOptions connectionOptions, WebSocketConnectionRegistry? registry = null)
    {
        ServerHandshakeResult result = ServerHandshake.Validate(context.Request.Method, context.Request.Protocol,
            new HeaderSource(context.Request.Headers), handshakeOptions);
        IHttpUpgradeFeature? upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (result.IsAccepted && upgrade is not { IsUpgradableRequest: true })
        {
            result = new ServerHandshakeResult
            {
                Rejection = HandshakeRejection.HttpVersionTooOld,
                StatusCode = 400,
                ReasonPhrase = "Bad Request",
                Message = "This connection cannot be upgraded (WebSocket needs an HTTP/1.1 connection).",
            };
        }

        if (!result.IsAccepted)
        {
            context.Response.StatusCode = result.StatusCode;
            foreach (var (name, value) in result.ResponseHeaders)
            {
                context.Response.Headers[name] = value;
            }

            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync(result.Message + "\n", Encoding.UTF8).ConfigureAwait(false);
            return;
        }

        foreach (var (name, value) in result.ResponseHeaders)
        {
            context.Response.Headers[name] = value;
        }

        WebSocketHandler handler = handlerFactory(context);
        Stream stream = await upgrade!.UpgradeAsync().ConfigureAwait(false);
        var connection = new WebSocketConnection(DuplexPipe.Create(stream), WebSocketRole.Server, connectionOptions,
            result.SubProtocol, abortTransport: context.Abort, compression: result.Compression);
        registry?.Add(connection);
        try
        {
            await connection.RunAsync(handler).ConfigureAwait(false);
        }
        finally
        {
            registry?.Remove(connection);
        }
    }

    private static WebSocketConnectionOptions CopyWithLogger(WebSocketConnectionOptions o, ILogger logger) => new()
    {
        MaxMessageSize = o.MaxMessageSize,
        MaxOutboundQueueBytes = o.MaxOutboundQueueBytes,
        OverflowPolicy = o.OverflowPolicy,
        KeepAliveInterval = o.KeepAliveInterval,
        KeepAliveTimeout = o.KeepAliveTimeout,
        CloseTimeout = o.CloseTimeout,
        ReceiveQueueCapacity = o.ReceiveQueueCapacity,
        CompressionLevel = o.CompressionLevel,
        CompressionThreshold = o.CompressionThreshold,
        Heartbeat = o.Heartbeat,
        Metrics = o.Metrics,
        EndpointName = o.EndpointName,
        Logger = logger,
    };

    private sealed class HeaderSource(IHeaderDictionary headers) : IHeaderSource
    {
        public string? Get(string name)
        {
            StringValues v = headers[name];
            return v.Count == 0 ? null : v.Count == 1 ? v[0] : string.Join(", ", v.ToArray());
        }
    }
}
