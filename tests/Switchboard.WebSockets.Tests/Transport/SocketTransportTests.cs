using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Switchboard.WebSockets.AspNetCore;
using Switchboard.WebSockets.AspNetCore.Sockets;

namespace Switchboard.WebSockets.Tests.Transport;

/// <summary>
/// Switchboard's socket transport under a real Kestrel: HTTP (keep-alive, pipelining, large bodies both ways), the
/// closed token while a request runs, WebSocket upgrades through the router with no receive buffer held while idle.
/// </summary>
public sealed class SocketTransportTests : IAsyncLifetime
{
    private WebApplication _app = null!;
    private readonly ConcurrentQueue<ConnectionContext> _connections = new();
    private readonly TaskCompletionSource _aborted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _slowStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _port;

    private sealed class Echo : WebSocketHandler
    {
        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            connection.Send(message.Type, message.Data);
            return ValueTask.CompletedTask;
        }
    }

    public async Task InitializeAsync()
    {
        var router = new WebSocketUpgradeRouter();
        router.Map("/echo", _ => ValueTask.FromResult<WebSocketHandler?>(new Echo()), new WebSocketEndpointOptions());
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.UseSwitchboardSockets();
        builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l =>
        {
            l.Use(next => connection =>
            {
                _connections.Enqueue(connection);
                return next(connection);
            });
            l.Use(next => connection => router.HandleAsync(connection, next));
        }));
        _app = builder.Build();
        _app.MapGet("/hello", () => "hello");
        _app.MapPost("/length", async (HttpRequest request) =>
        {
            long n = 0;
            byte[] buffer = new byte[8192];
            int read;
            while ((read = await request.Body.ReadAsync(buffer)) > 0)
            {
                n += read;
            }

            return n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
        _app.MapGet("/big", () => Results.Text(new string('x', 3_000_000)));
        _app.MapGet("/slow", async (HttpContext ctx) =>
        {
            _slowStarted.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                _aborted.TrySetResult();
            }
        });
        await _app.StartAsync();
        _port = new Uri(Switchboard.Server.SwitchboardServer.GetAddresses(_app)[0]).Port;
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Kestrel_accepts_connections_with_this_transport_on_the_port_it_chose()
    {
        Assert.NotEqual(0, _port);
        using var http = new HttpClient();
        Assert.Equal("hello", await http.GetStringAsync($"http://127.0.0.1:{_port}/hello"));
        Assert.All(_connections, c => Assert.IsType<SocketConnection>(c));
        Assert.NotEmpty(_connections);
    }

    [Fact]
    public async Task Keep_alive_requests_and_large_bodies_both_ways_arrive_whole()
    {
        using var http = new HttpClient();
        byte[] body = new byte[5_000_000];
        Random.Shared.NextBytes(body);
        for (int i = 0; i < 3; i++)
        {
            HttpResponseMessage posted = await http.PostAsync($"http://127.0.0.1:{_port}/length", new ByteArrayContent(body));
            Assert.Equal("5000000", await posted.Content.ReadAsStringAsync());
            string big = await http.GetStringAsync($"http://127.0.0.1:{_port}/big");
            Assert.Equal(3_000_000, big.Length);
        }

        Assert.Single(_connections); // one keep-alive connection carried all six requests
    }

    [Fact]
    public async Task Pipelined_requests_in_one_write_are_each_answered()
    {
        await using RawWebSocket raw = await RawWebSocket.OpenTcpAsync(_port);
        string one = $"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:{_port}\r\n\r\n";
        await raw.SendAsync(Encoding.ASCII.GetBytes(one + one + one.Replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n")));
        string all = await raw.ReadToEndAsync();
        Assert.Equal(3, all.Split("HTTP/1.1 200 OK").Length - 1);
    }

    [Fact]
    public async Task A_peer_that_goes_away_during_a_request_aborts_it()
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPAddress.Loopback, _port);
        await client.SendAsync(Encoding.ASCII.GetBytes($"GET /slow HTTP/1.1\r\nHost: 127.0.0.1:{_port}\r\n\r\n"));
        await _slowStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));
        client.Close(); // FIN while the handler waits: nobody reads, yet the request learns of it
        await _aborted.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>A WebSocket through the transport that has had one message echoed, and the server's side of it.</summary>
    private async Task<(RawWebSocket Ws, SocketConnection Server)> EchoedOnceAsync()
    {
        RawWebSocket ws = await RawWebSocket.ConnectAsync(_port, "/echo");
        await ws.SendAsync(RawWebSocket.TextFrame("hi"));
        Assert.Equal("hi", (await ws.ReadFrameAsync())!.Text);
        return (ws, Assert.IsType<SocketConnection>(Assert.Single(_connections)));
    }

    [Fact]
    public async Task An_idle_websocket_holds_no_receive_buffer_and_one_with_a_partial_frame_does()
    {
        (RawWebSocket ws, SocketConnection server) = await EchoedOnceAsync();
        await using RawWebSocket _ = ws;
        await WaitUntil(() => server.Reader.HeldBufferBytes == 0); // the echo may leave before the engine releases its read

        // Part of a frame's header (the engine consumes payload as it comes, but not half a header): the reader holds it.
        byte[] frame = RawWebSocket.TextFrame(new string('a', 1000));
        await ws.SendAsync(frame[..3]);
        await WaitUntil(() => server.Reader.HeldBufferBytes > 0);
        await ws.SendAsync(frame[3..]);
        Assert.Equal(1000, (await ws.ReadFrameAsync())!.Payload.Length);
        await WaitUntil(() => server.Reader.HeldBufferBytes == 0);
    }

    [Fact]
    public async Task A_websocket_connection_holds_no_runtime_socket_state()
    {
        (RawWebSocket ws, SocketConnection server) = await EchoedOnceAsync();
        await using RawWebSocket _ = ws;
        Socket socket = server.Features.Get<IConnectionSocketFeature>()!.Socket;

        // Accepted, upgraded, read from and written to: the runtime's asynchronous state for a socket (224 bytes) is
        // made when a socket is switched to non-blocking mode or used asynchronously, and this one was neither.
        Assert.Equal(!OperatingSystem.IsLinux(), RuntimeSocketState.HasAsyncContext(socket));
    }

    [Fact]
    public async Task A_websocket_message_larger_than_many_receive_buffers_arrives_whole()
    {
        await using RawWebSocket ws = await RawWebSocket.ConnectAsync(_port, "/echo");
        string big = string.Concat(Enumerable.Repeat("0123456789", 100_000));
        await ws.SendAsync(RawWebSocket.TextFrame(big));
        Assert.Equal(big, (await ws.ReadFrameAsync())!.Text);
    }

    /// <summary>Polls a condition the server reaches on its own threads (no fixed sleep: bounded wait).</summary>
    private static async Task WaitUntil(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!condition())
        {
            await Task.Delay(5, timeout.Token);
        }
    }
}
