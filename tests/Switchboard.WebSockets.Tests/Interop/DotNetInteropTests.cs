using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Switchboard.Server;

namespace Switchboard.WebSockets.Tests.Interop;

/// <summary>.NET's own WebSocket implementation (System.Net.WebSockets), both directions.</summary>
public class DotNetInteropTests
{
    /// <summary>Receives one whole message (or the close: type Close, no data).</summary>
    internal static async Task<(WebSocketMessageType Type, byte[] Data)> ReceiveWholeAsync(WebSocket ws)
    {
        var ms = new MemoryStream();
        byte[] buf = new byte[64 * 1024];
        while (true)
        {
            WebSocketReceiveResult r = await ws.ReceiveAsync(buf, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
            if (r.MessageType == WebSocketMessageType.Close)
            {
                return (r.MessageType, []);
            }

            ms.Write(buf, 0, r.Count);
            if (r.EndOfMessage)
            {
                return (r.MessageType, ms.ToArray());
            }
        }
    }

    [Fact]
    public async Task ClientWebSocket_against_our_server()
    {
        var server = await TestServer.Shared;
        string tag = "dotnet-" + Guid.NewGuid().ToString("N");
        using var ws = new ClientWebSocket();
        ws.Options.AddSubProtocol("probe.v1");
        ws.Options.KeepAliveInterval = TimeSpan.FromMilliseconds(100);
        ws.Options.KeepAliveTimeout = TimeSpan.FromSeconds(2); // ClientWebSocket aborts if our server's pongs do not come
        await ws.ConnectAsync(server.Url("/probe?tag=" + tag), CancellationToken.None);
        Assert.Equal("probe.v1", ws.SubProtocol);

        async Task RoundTrip(WebSocketMessageType type, byte[] data)
        {
            await ws.SendAsync(data, type, true, CancellationToken.None);
            var (t, d) = await ReceiveWholeAsync(ws);
            Assert.Equal(type, t);
            Assert.True(data.AsSpan().SequenceEqual(d));
        }

        await RoundTrip(WebSocketMessageType.Text, "hello"u8.ToArray());
        await RoundTrip(WebSocketMessageType.Binary, [0, 1, 2, 255]);
        await RoundTrip(WebSocketMessageType.Text, []);
        await RoundTrip(WebSocketMessageType.Binary, []);
        byte[] big = new byte[16 * 1024 * 1024];
        Random.Shared.NextBytes(big);
        await RoundTrip(WebSocketMessageType.Binary, big);

        await ws.SendAsync("frag-"u8.ToArray(), WebSocketMessageType.Text, false, CancellationToken.None);
        await ws.SendAsync("ment"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("frag-ment", Encoding.UTF8.GetString((await ReceiveWholeAsync(ws)).Data));

        await ws.SendAsync("ping:from-server"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("pong:from-server", Encoding.UTF8.GetString((await ReceiveWholeAsync(ws)).Data));
        await ws.SendAsync("frag:3:abcdefgh"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("abcdefgh", Encoding.UTF8.GetString((await ReceiveWholeAsync(ws)).Data));

        // Give ClientWebSocket's keepalive (100 ms pings, 2 s pong timeout) time to run; it would abort without pongs.
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        Assert.Equal(System.Net.WebSockets.WebSocketState.Open, ws.State);

        await ws.CloseAsync((System.Net.WebSockets.WebSocketCloseStatus)4001, "bye from dotnet", CancellationToken.None);
        Assert.Equal(4001, (int)ws.CloseStatus!);
        Assert.Equal(new Switchboard.Protocol.WebSocketCloseStatus(4001, "bye from dotnet", true), await server.ProbeClosed(tag).WaitAsync(TimeSpan.FromSeconds(30)));

        using var ws2 = new ClientWebSocket();
        await ws2.ConnectAsync(server.Url("/probe"), CancellationToken.None);
        await ws2.SendAsync("close:4002:server bye"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var (type, _) = await ReceiveWholeAsync(ws2);
        Assert.Equal(WebSocketMessageType.Close, type);
        Assert.Equal((4002, "server bye"), ((int)ws2.CloseStatus!, ws2.CloseStatusDescription));
    }

    [Fact]
    public async Task Our_client_against_aspnetcore_builtin_websocket_server()
    {
        var closes = new TaskCompletionSource<(int, string?)>(TaskCreationOptions.RunContinuationsAsynchronously);
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using WebApplication app = builder.Build();
        app.UseWebSockets();
        app.Map("/", async (HttpContext ctx) =>
        {
            using WebSocket ws = await ctx.WebSockets.AcceptWebSocketAsync();
            while (true)
            {
                var (type, data) = await ReceiveWholeAsync(ws);
                if (type == WebSocketMessageType.Close)
                {
                    if (ws.CloseStatus != (System.Net.WebSockets.WebSocketCloseStatus)4002)
                    {
                        closes.TrySetResult(((int)ws.CloseStatus!, ws.CloseStatusDescription));
                        await ws.CloseOutputAsync(ws.CloseStatus!.Value, ws.CloseStatusDescription, CancellationToken.None);
                    }

                    return;
                }

                string text = type == WebSocketMessageType.Text ? Encoding.UTF8.GetString(data) : "";
                if (text.StartsWith("frag:", StringComparison.Ordinal))
                {
                    byte[] all = Encoding.UTF8.GetBytes(text.Split(':', 3)[2]);
                    for (int i = 0; i < all.Length; i += 3)
                    {
                        await ws.SendAsync(all.AsMemory(i, Math.Min(3, all.Length - i)), WebSocketMessageType.Text, i + 3 >= all.Length, CancellationToken.None);
                    }
                }
                else if (text.StartsWith("close:", StringComparison.Ordinal))
                {
                    string[] p = text.Split(':', 3);
                    await ws.CloseOutputAsync((System.Net.WebSockets.WebSocketCloseStatus)int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture), p[2], CancellationToken.None);
                }
                else
                {
                    await ws.SendAsync(data, type, true, CancellationToken.None);
                }
            }
        });
        await app.StartAsync();
        string address = SwitchboardServer.GetAddresses(app)[0].Replace("http://", "ws://", StringComparison.Ordinal);

        // System.Net.WebSockets cannot send a ping on demand, so the server-initiated ping step is skipped.
        await Scenario.RunOurClientAsync(new Uri(address + "/"), peerCanPing: false);
        Assert.Equal((4001, "bye from switchboard"), await closes.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        await app.StopAsync();
    }
}
