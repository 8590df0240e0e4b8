using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;
using Switchboard.Protocol;
using Switchboard.Protocol.Handshake;

namespace Switchboard.WebSockets.AspNetCore;

/// <summary>An upgrade request seen at the connection level, before Kestrel's HTTP layer.</summary>
public sealed class UpgradeRequest
{
    private readonly HttpRequestHead _head;
    private Dictionary<string, StringValues>? _query;

    internal UpgradeRequest(HttpRequestHead head, string path, string query)
    {
        _head = head;
        Path = path;
        QueryString = query;
    }

    /// <summary>The request path, e.g. /hub.</summary>
    public string Path { get; }

    /// <summary>The raw query string (with '?'), or empty.</summary>
    public string QueryString { get; }

    /// <summary>The request headers.</summary>
    public IHeaderSource Headers => _head.Headers;

    /// <summary>A query parameter's value, or null.</summary>
    public string? Query(string name)
    {
        _query ??= QueryHelpers.ParseQuery(QueryString);
        return _query.TryGetValue(name, out StringValues v) && v.Count > 0 ? v[0] : null;
    }
}

/// <summary>
/// Takes WebSocket upgrades at the connection level (a Kestrel connection middleware): parses the handshake with
/// <see cref="HttpHeadParser"/> and <see cref="ServerHandshake"/>, answers 101 itself, and runs the engine directly on
/// the transport's pipe — no HTTP request objects, no upgrade stream, no stream-to-pipe adapters per connection.
/// Anything else (plain HTTP, a refused or unusual handshake, a route that declines) is handed to Kestrel's HTTP
/// layer untouched, where the regular endpoints answer it — so behaviour is the same either way, only cheaper.
/// </summary>
public sealed class WebSocketUpgradeRouter
{
    private readonly Dictionary<string, Route> _routes = new(StringComparer.Ordinal);

    private sealed record Route(Func<UpgradeRequest, ValueTask<WebSocketHandler?>> Accept, ServerHandshakeOptions Handshake, WebSocketEndpointOptions Options);

    /// <summary>Time allowed for the whole request head (a handshake that never finishes is dropped).</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The heartbeat that checks <see cref="HandshakeTimeout"/>. Default <see cref="WebSocketHeartbeat.Shared"/>.</summary>
    public WebSocketHeartbeat Heartbeat { get; set; } = WebSocketHeartbeat.Shared;

    /// <summary>A handshake in progress: past its deadline, the pending read is cancelled and the connection dropped.</summary>
    private sealed class HandshakeDeadline(ConnectionContext connection, long deadlineMs) : IHeartbeatListener
    {
        private volatile bool _expired;

        public bool Expired => _expired;

        public void OnHeartbeat(long nowMs)
        {
            if (nowMs >= deadlineMs && !_expired)
            {
                _expired = true;
                connection.Transport.Input.CancelPendingRead();
            }
        }
    }

    /// <summary>
    /// Routes upgrades for <paramref name="path"/>. <paramref name="accept"/> returns the handler, or null to let the
    /// HTTP pipeline handle the request instead (e.g. to answer 401 with its own logic).
    /// </summary>
    public void Map(string path, Func<UpgradeRequest, ValueTask<WebSocketHandler?>> accept, WebSocketEndpointOptions options) =>
        _routes[path] = new Route(accept, options.ToHandshakeOptions(), options);

    private static bool StartsLikeGet(ReadOnlySequence<byte> buffer)
    {
        ReadOnlySpan<byte> get = "GET "u8;
        Span<byte> first = stackalloc byte[4];
        int n = (int)Math.Min(buffer.Length, 4);
        buffer.Slice(0, n).CopyTo(first);
        return first[..n].SequenceEqual(get[..n]);
    }

    /// <summary>The data after any CR and LF bytes that precede the request line.</summary>
    private static ReadOnlySequence<byte> SkipEmptyLines(ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        reader.AdvancePastAny((byte)'\r', (byte)'\n');
        return reader.UnreadSequence;
    }

    /// <summary>The connection middleware.</summary>
    public Task HandleAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        // The handshake's state machine (head, headers, buffers) ends with the handshake; while the connection runs,
        // only a small continuation waits for it. Idle connections are the common case: this keeps them cheap.
        Task<Task?> accepting = AcceptAsync(connection, next);
        return accepting.IsCompletedSuccessfully ? accepting.Result ?? Task.CompletedTask : RunWhenAcceptedAsync(accepting);
    }

    private static async Task RunWhenAcceptedAsync(Task<Task?> accepting)
    {
        Task? running = await accepting.ConfigureAwait(false);
        accepting = null!; // the handshake's state machine would otherwise live as long as the connection, through this one
        if (running is not null)
        {
            await running.ConfigureAwait(false);
        }
    }

    /// <summary>Reads the head and either upgrades (returning the running connection's task) or hands the bytes to HTTP.</summary>
    private async Task<Task?> AcceptAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        PipeReader input = connection.Transport.Input;
        HttpRequestHead? head;
        ReadOnlySequence<byte> buffer;
        SequencePosition headEnd;
        // The handshake timeout is checked on the heartbeat's tick, like every other deadline: no timer per connection.
        // It is registered only once a read has to wait: a head that is already there (the usual case) needs none.
        long deadlineMs = Heartbeat.NowMs + (long)HandshakeTimeout.TotalMilliseconds;
        HandshakeDeadline? deadline = null;
        try
        {
            while (true)
            {
                ValueTask<ReadResult> reading = input.ReadAsync();
                if (!reading.IsCompleted && deadline is null)
                {
                    deadline = new HandshakeDeadline(connection, deadlineMs);
                    Heartbeat.Register(deadline);
                }

                ReadResult result = await reading.ConfigureAwait(false);
                if (deadline?.Expired == true)
                {
                    connection.Abort(new ConnectionAbortedException("The request head did not arrive in time."));
                    return null;
                }

                buffer = result.Buffer;
                ReadOnlySequence<byte> requestBytes = SkipEmptyLines(buffer);
                if (requestBytes.IsEmpty && !result.IsCompleted && !result.IsCanceled)
                {
                    // Empty lines before the request line may be ignored (RFC 9112 §2.2), but they do not restart the
                    // clock: the whole head, whatever comes first, arrives within the handshake timeout.
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }

                if (!StartsLikeGet(requestBytes))
                {
                    head = null; // not a WebSocket upgrade (those are GET requests): Kestrel's HTTP layer takes it as it is
                    headEnd = buffer.Start;
                    break;
                }

                var reader = new SequenceReader<byte>(requestBytes);
                HttpHeadStatus status = HttpHeadParser.TryParseRequest(ref reader, out head);
                if (status == HttpHeadStatus.NeedMoreData && !result.IsCompleted && !result.IsCanceled)
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }

                headEnd = reader.Position;
                if (status is HttpHeadStatus.Invalid or HttpHeadStatus.TooLarge or HttpHeadStatus.TooManyFields)
                {
                    // A GET whose head is not HTTP/1.1 (e.g. bare LF line ends, which would otherwise wait for a CRLF
                    // that never comes): answer it here, with the reason, rather than leave it to time out.
                    input.AdvanceTo(buffer.End);
                    await connection.Transport.Output.WriteAsync(ServerHandshake.FormatResponse(ServerHandshake.RejectHead(status))).ConfigureAwait(false);
                    await connection.Transport.Output.CompleteAsync().ConfigureAwait(false);
                    return null;
                }

                if (status != HttpHeadStatus.Complete)
                {
                    head = null;
                }

                break;
            }
        }
        finally
        {
            if (deadline is not null)
            {
                Heartbeat.Unregister(deadline);
            }
        }

        Route? route = null;
        UpgradeRequest? request = null;
        WebSocketHandler? handler = null;
        ServerHandshakeResult? handshake = null;
        using System.Diagnostics.Activity? trace = head is not null && head.Headers.Get("Upgrade") is not null
            ? WebSocketTracing.Source.StartActivity("handshake", System.Diagnostics.ActivityKind.Server)
            : null;
        if (head is not null && head.Headers.Get("Upgrade") is not null)
        {
            int q = head.Target.IndexOf('?', StringComparison.Ordinal);
            string path = q < 0 ? head.Target : head.Target[..q];
            trace?.SetTag("url.path", path);
            if (_routes.TryGetValue(path, out route))
            {
                handshake = ServerHandshake.Validate(head.Method, head.Version, head.Headers, route.Handshake);
                if (handshake.IsAccepted)
                {
                    request = new UpgradeRequest(head, path, q < 0 ? string.Empty : head.Target[q..]);
                    handler = await route.Accept(request).ConfigureAwait(false);
                }
            }
        }

        if (handler is null)
        {
            trace?.SetTag("switchboard.handshake", "to_http"); // refused or not ours: the HTTP endpoint answers it
            input.AdvanceTo(buffer.Start, buffer.Start); // nothing consumed or examined: Kestrel reads the same bytes
            await next(connection).ConfigureAwait(false);
            return null;
        }

        input.AdvanceTo(headEnd); // bytes after the head are the client's first frames
        byte[] response = ServerHandshake.FormatResponse(handshake!);
        string? subProtocol = handshake!.SubProtocol;
        Protocol.Extensions.DeflateParameters? compression = handshake.Compression;
        WebSocketEndpointOptions options = route!.Options;

        Socket? socket = DirectSocketOf(connection);
        if (socket is null)
        {
            await connection.Transport.Output.WriteAsync(response).ConfigureAwait(false);
        }
        else
        {
            NonBlockingSocket.Prepare(socket); // the engine's sends never wait in the kernel (Kestrel itself uses only async operations)
            await SocketSend.SendAllAsync(socket, response).ConfigureAwait(false);
        }

        trace?.SetTag("switchboard.handshake", "101");
        trace?.Stop(); // the connection runs on without it
        return Run(connection, options, subProtocol, compression, handler, socket);
    }

    /// <summary>
    /// The socket under the connection when the transport's pipe writes straight to it (Kestrel's socket transport,
    /// no TLS): the engine then sends to it directly, without the output pipe's copy and hand-off per batch.
    /// </summary>
    private static Socket? DirectSocketOf(ConnectionContext connection) =>
        connection.Features.Get<ITlsHandshakeFeature>() is null && connection.Features.Get<IConnectionSocketFeature>() is { } f
            ? f.Socket
            : null;

    /// <summary>Starts the connection and returns the task that completes when it has ended.</summary>
    private static Task Run(ConnectionContext connection, WebSocketEndpointOptions options, string? subProtocol,
        Protocol.Extensions.DeflateParameters? compression, WebSocketHandler handler, Socket? socket)
    {
        var ws = new WebSocketConnection(connection.Transport, WebSocketRole.Server, options.Connection, subProtocol,
            abortTransport: connection.Abort, compression: compression) { DirectSocket = socket };
        if (options.Registry is { } registry)
        {
            registry.Add(ws);
            ws.Tracker = registry; // the connection removes itself when it ends: no wrapper task per connection
        }

        return ws.RunAsync(handler);
    }
}
