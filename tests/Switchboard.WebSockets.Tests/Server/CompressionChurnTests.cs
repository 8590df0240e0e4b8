using System.Globalization;
using Switchboard.Tests.Shared;

namespace Switchboard.WebSockets.Tests.Server;

/// <summary>
/// zlib state under connection churn, on a real `switchboard serve` process: hundreds of connections that compress in
/// both directions open, exchange messages and close; afterwards the server holds no zlib stream per closed connection
/// (with context takeover each one had its own), and only a bounded pool without it.
/// </summary>
public class CompressionChurnTests
{
    private static async Task<double> GaugeAsync(int port, string name)
    {
        using var http = new HttpClient();
        string text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        string line = text.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private static async Task ChurnAsync(int port, int waves, int perWave)
    {
        string text = string.Join('\n', Enumerable.Range(0, 300).Select(i => $"{{\"offset\":{i},\"text\":\"message number {i} in the churn test\"}}"));
        for (int wave = 0; wave < waves; wave++)
        {
            WebSocketConnection[] connections = await Task.WhenAll(Enumerable.Range(0, perWave).Select(_ =>
                WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/echo"), new WebSocketClientOptions
                {
                    Compression = true,
                    Connection = new() { CompressionThreshold = 0 },
                })));
            foreach (WebSocketConnection c in connections)
            {
                Assert.NotNull(c.Compression);
                c.SendText(text);
                c.SendText(text + "!");
            }

            foreach (WebSocketConnection c in connections)
            {
                Assert.Equal(text, (await c.ReceiveAsync())!.Text);
                Assert.Equal(text + "!", (await c.ReceiveAsync())!.Text);
            }

            await Task.WhenAll(connections.Select(c => c.CloseAsync()));
        }
    }

    /// <summary>Polls the server's gauges until every connection has ended and the zlib streams are down to <paramref name="atMost"/>.</summary>
    private static async Task<double> SettledStreamsAsync(int port, double atMost)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        double streams;
        while ((await GaugeAsync(port, "switchboard_connections") > 0 || (streams = await GaugeAsync(port, "switchboard_deflate_streams")) > atMost)
            && !deadline.IsCancellationRequested)
        {
            await Task.Delay(50, CancellationToken.None);
        }

        return await GaugeAsync(port, "switchboard_deflate_streams");
    }

    [Fact]
    public async Task Context_takeover_connections_free_their_zlib_state_when_they_close()
    {
        await using PeerProcess server = PeerProcess.Start("dotnet", AppContext.BaseDirectory,
            new Dictionary<string, string> { ["SWITCHBOARD_COMPRESSIONCONTEXTTAKEOVER"] = "true" },
            ServerProcess.SwitchboardDll, "serve", "--store", "memory", "--urls", $"http://127.0.0.1:{ServerProcess.FreePort()}");
        string started = await server.ReadLineAsync("info: Microsoft.Hosting.Lifetime[14] Now listening on:");
        int port = new Uri(started.Split("on: ")[1].Trim()).Port;
        await ChurnAsync(port, waves: 4, perWave: 50);
        Assert.Equal(0, await SettledStreamsAsync(port, atMost: 0)); // 200 connections each held a compressor and a decompressor
    }

    [Fact]
    public async Task Connections_without_context_takeover_share_a_bounded_pool()
    {
        var (server, port) = await ServeCommandTests.StartServerAsync();
        await using var _ = server;
        await ChurnAsync(port, waves: 4, perWave: 50);
        double streams = await SettledStreamsAsync(port, atMost: 64);
        Assert.InRange(streams, 1, 64); // pooled for reuse, not one per connection that ever compressed
    }
}
