using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Switchboard.Protocol;
using Switchboard.Server;
using Switchboard.WebSockets;
using Switchboard.WebSockets.AspNetCore;

namespace Switchboard.WebSockets.Tests;

/// <summary>
/// The real server (SwitchboardServer.Build, Kestrel on a free loopback port), shared by every test in the
/// assembly, plus a /probe endpoint used by the interop tests.
/// </summary>
public sealed class TestServer
{
    public const long MaxMessageSize = 20 * 1024 * 1024;
    private static readonly Lazy<Task<TestServer>> s_shared = new(StartAsync);

    private TestServer(WebApplication app, Uri http)
    {
        App = app;
        Http = http;
        Ws = new Uri($"ws://{http.Authority}");
    }

    public static Task<TestServer> Shared => s_shared.Value;

    public WebApplication App { get; }

    public Uri Http { get; }

    public Uri Ws { get; }

    public int Port => Http.Port;

    /// <summary>Close statuses seen by /probe connections, by their ?tag= value.</summary>
    public ConcurrentDictionary<string, TaskCompletionSource<WebSocketCloseStatus>> ProbeCloses { get; } = new();

    public Uri Url(string pathAndQuery) => new(Ws, pathAndQuery);

    public Task<WebSocketCloseStatus> ProbeClosed(string tag) => ProbeCloses.GetOrAdd(tag, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    private static async Task<TestServer> StartAsync()
    {
        var options = new SwitchboardServerOptions
        {
            Urls = "http://127.0.0.1:0",
            HandshakeTimeout = TimeSpan.FromSeconds(2),
            MaxMessageSize = MaxMessageSize,
            CloseTimeout = TimeSpan.FromSeconds(3),
            Store = "memory",
        };
        WebApplication app = SwitchboardServer.Build(options, l => l.SetMinimumLevel(LogLevel.Warning));
        TestServer? server = null;
        app.MapWebSocket("/probe", ctx => new ProbeHandler(server!, ctx.Request.Query["tag"].ToString()),
            new WebSocketEndpointOptions { Connection = new() { MaxMessageSize = MaxMessageSize }, SubProtocols = ["probe.v1"] });
        // The same probe with permessage-deflate and context takeover both ways (the most demanding setting for a
        // peer), compressing every message that shrinks.
        app.MapWebSocket("/probe-deflate", ctx => new ProbeHandler(server!, ctx.Request.Query["tag"].ToString()),
            new WebSocketEndpointOptions
            {
                Connection = new() { MaxMessageSize = MaxMessageSize, CompressionThreshold = 0 },
                Compression = new Protocol.Extensions.DeflateServerPolicy(),
            });
        await app.StartAsync();
        server = new TestServer(app, new Uri(SwitchboardServer.GetAddresses(app)[0]));
        return server;
    }

    /// <summary>
    /// The interop probe: echoes, except "ping:P" (server pings with P, then sends "pong:" + the pong's payload),
    /// "frag:N:TEXT" (sends TEXT in N fragments), "ext?" (answers the agreed permessage-deflate parameters or "none")
    /// and "close:CODE:REASON" (server closes).
    /// </summary>
    private sealed class ProbeHandler(TestServer server, string tag) : WebSocketHandler
    {
        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            if (message.Type == MessageType.Text)
            {
                string text = message.GetText();
                if (text.StartsWith("ping:", StringComparison.Ordinal))
                {
                    connection.SendPing(Encoding.UTF8.GetBytes(text[5..]));
                    return ValueTask.CompletedTask;
                }

                if (text.StartsWith("frag:", StringComparison.Ordinal))
                {
                    string[] parts = text.Split(':', 3);
                    byte[] all = Encoding.UTF8.GetBytes(parts[2]);
                    int n = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
                    int size = (all.Length + n - 1) / n;
                    for (int i = 0; i < n; i++)
                    {
                        int start = Math.Min(all.Length, i * size);
                        int end = Math.Min(all.Length, start + size);
                        connection.SendFragment(MessageType.Text, all.AsSpan(start, end - start), isFirst: i == 0, endOfMessage: i == n - 1);
                    }

                    return ValueTask.CompletedTask;
                }

                if (text == "ext?")
                {
                    connection.SendText(connection.Compression?.ToResponseHeader() ?? "none");
                    return ValueTask.CompletedTask;
                }

                if (text.StartsWith("close:", StringComparison.Ordinal))
                {
                    string[] parts = text.Split(':', 3);
                    connection.Close(ushort.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), parts[2]);
                    return ValueTask.CompletedTask;
                }
            }

            connection.Send(message.Type, message.Data);
            return ValueTask.CompletedTask;
        }

        public override ValueTask OnPongAsync(WebSocketConnection connection, System.Buffers.ReadOnlySequence<byte> payload)
        {
            connection.SendText("pong:" + Encoding.UTF8.GetString(payload));
            return ValueTask.CompletedTask;
        }

        public override ValueTask OnCloseAsync(WebSocketConnection connection, WebSocketCloseStatus status)
        {
            if (tag.Length > 0)
            {
                server.ProbeCloses.GetOrAdd(tag, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(status);
            }

            return ValueTask.CompletedTask;
        }
    }
}
