using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Switchboard.Protocol;
using Switchboard.WebSockets.AspNetCore;

namespace Switchboard.WebSockets.Tests.Engine;

/// <summary>The writer sending straight to the socket (server connections on Kestrel's socket transport, no TLS).</summary>
public class DirectSocketTests
{
    private sealed class Echo : WebSocketHandler
    {
        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            connection.Send(message.Type, message.Data);
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task Frames_go_to_the_socket_in_order_and_the_output_pipe_stays_unused()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        using Socket accepted = await listener.AcceptAsync();

        // Input from the socket as Kestrel would provide it; output to a pipe nobody should write to.
        var unusedOutput = new Pipe();
        // The transport owns the socket (as Kestrel's does): disposing it at the end closes the TCP connection.
        var transport = new DuplexPipe(PipeReader.Create(new NetworkStream(accepted, ownsSocket: false)), unusedOutput.Writer, accepted);
        var server = new WebSocketConnection(transport, WebSocketRole.Server, abortTransport: () => accepted.Close()) { DirectSocket = accepted };
        Task<WebSocketCloseStatus> run = server.RunAsync(new Echo());

        await using var peer = RawWebSocket.FromSocket(client);
        // Small messages (several per send), one far larger than a batch's flush threshold and the buffer's first
        // size, then a ping: every frame arrives whole and in order.
        string big = string.Concat(Enumerable.Repeat("0123456789abcdef", 300_000 / 16));
        var frames = new List<byte>();
        for (int i = 0; i < 50; i++)
        {
            frames.AddRange(RawWebSocket.TextFrame("m" + i));
        }

        frames.AddRange(RawWebSocket.TextFrame(big));
        frames.AddRange(RawWebSocket.Frame(9, Encoding.ASCII.GetBytes("are you there")));
        await peer.SendAsync([.. frames]);

        for (int i = 0; i < 50; i++)
        {
            Assert.Equal("m" + i, (await peer.ReadFrameAsync())!.Text);
        }

        Assert.Equal(big, (await peer.ReadFrameAsync())!.Text);
        RawFrame? pong = await peer.ReadFrameAsync();
        Assert.Equal(10, pong!.Opcode);
        Assert.Equal("are you there", pong.Text);

        await peer.SendAsync(RawWebSocket.CloseFrame(1000, "bye"));
        Assert.Equal(1000, await peer.ExpectCloseAsync());
        WebSocketCloseStatus status = await run.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.True(status.WasClean);

        // The engine completed the output pipe at the end but never wrote to it.
        ReadResult leftover = await unusedOutput.Reader.ReadAsync();
        Assert.True(leftover.IsCompleted);
        Assert.Equal(0, leftover.Buffer.Length);
    }

    private sealed class TransportProbe : WebSocketHandler
    {
        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            connection.SendText(connection.DirectSocket is null ? "pipe" : "socket");
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task The_upgrade_router_on_kestrels_socket_transport_writes_straight_to_the_socket()
    {
        var router = new WebSocketUpgradeRouter();
        router.Map("/t", _ => ValueTask.FromResult<WebSocketHandler?>(new TransportProbe()), new WebSocketEndpointOptions());
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Use(next => c => router.HandleAsync(c, next))));
        await using WebApplication app = builder.Build();
        await app.StartAsync();
        int port = new Uri(Switchboard.Server.SwitchboardServer.GetAddresses(app)[0]).Port;

        await using RawWebSocket ws = await RawWebSocket.ConnectAsync(port, "/t");
        await ws.SendAsync(RawWebSocket.TextFrame("transport?"));
        Assert.Equal("socket", (await ws.ReadFrameAsync())!.Text);
        await ws.SendAsync(RawWebSocket.CloseFrame(1000));
        Assert.Equal(1000, await ws.ExpectCloseAsync());
        await app.StopAsync();
    }
}
