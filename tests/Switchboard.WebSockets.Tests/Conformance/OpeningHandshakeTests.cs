using System.Text;

namespace Switchboard.WebSockets.Tests.Conformance;

public class OpeningHandshakeTests
{
    private const string Key = "dGhlIHNhbXBsZSBub25jZQ==";

    private static async Task<string> RequestAsync(string request)
    {
        var server = await TestServer.Shared;
        await using var raw = await RawWebSocket.OpenTcpAsync(server.Port);
        await raw.SendAsync(Encoding.ASCII.GetBytes(request.Replace("{port}", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        return await raw.ReadHttpHeadAsync();
    }

    private static string Upgrade(string path = "/echo", string method = "GET", string version = "HTTP/1.1", string? upgrade = "websocket",
        string? connection = "Upgrade", string? key = Key, string? wsVersion = "13", string extra = "") =>
        $"{method} {path} {version}\r\nHost: 127.0.0.1:{{port}}\r\n" +
        (upgrade is null ? "" : $"Upgrade: {upgrade}\r\n") +
        (connection is null ? "" : $"Connection: {connection}\r\n") +
        (key is null ? "" : $"Sec-WebSocket-Key: {key}\r\n") +
        (wsVersion is null ? "" : $"Sec-WebSocket-Version: {wsVersion}\r\n") + extra + "\r\n";

    [Fact]
    public async Task Valid_request_gets_101_with_the_accept_key()
    {
        string head = await RequestAsync(Upgrade());
        Assert.StartsWith("HTTP/1.1 101 Switching Protocols\r\n", head);
        Assert.Contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", head);
        Assert.Matches("(?i)\r\nUpgrade: websocket\r\n", head);
        Assert.Matches("(?i)\r\nConnection: Upgrade\r\n", head);
    }

    [Fact]
    public async Task Header_tokens_are_case_insensitive_lists()
    {
        string head = await RequestAsync(Upgrade(upgrade: "WebSocket", connection: "keep-alive, UPGRADE"));
        Assert.StartsWith("HTTP/1.1 101 ", head);
    }

    [Theory]
    [InlineData("method", "POST", "405")]
    [InlineData("upgrade", null, "426")]
    [InlineData("upgrade", "h2c", "400")]
    [InlineData("key", null, "400")]
    [InlineData("key", "short", "400")]
    [InlineData("key", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "400")]
    [InlineData("wsVersion", "8", "426")]
    [InlineData("wsVersion", null, "426")]
    public async Task Bad_requests_get_the_right_status(string field, string? value, string status)
    {
        string request = field switch
        {
            "method" => Upgrade(method: value!),
            "upgrade" => Upgrade(upgrade: value),
            "key" => Upgrade(key: value),
            _ => Upgrade(wsVersion: value),
        };
        string head = await RequestAsync(request);
        Assert.StartsWith($"HTTP/1.1 {status} ", head);
    }

    [Fact]
    public async Task Unsupported_version_answer_names_version_13()
    {
        string head = await RequestAsync(Upgrade(wsVersion: "8"));
        Assert.StartsWith("HTTP/1.1 426 Upgrade Required\r\n", head);
        Assert.Contains("\r\nSec-WebSocket-Version: 13\r\n", head);
    }

    [Fact]
    public async Task Plain_http_request_gets_426_with_an_explanation()
    {
        var server = await TestServer.Shared;
        using var http = new HttpClient();
        HttpResponseMessage r = await http.GetAsync(new Uri(server.Http, "/echo"));
        Assert.Equal(426, (int)r.StatusCode);
        Assert.Contains("websocket", r.Headers.Upgrade.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.Contains("WebSocket", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Subprotocol_is_selected_from_the_offer()
    {
        string head = await RequestAsync(Upgrade(path: "/probe", extra: "Sec-WebSocket-Protocol: other, probe.v1\r\n"));
        Assert.StartsWith("HTTP/1.1 101 ", head);
        Assert.Contains("\r\nSec-WebSocket-Protocol: probe.v1\r\n", head);
        string none = await RequestAsync(Upgrade(path: "/probe", extra: "Sec-WebSocket-Protocol: other\r\n"));
        Assert.StartsWith("HTTP/1.1 101 ", none);
        Assert.DoesNotContain("Sec-WebSocket-Protocol", none);
    }
}

public class BadInputTests
{
    [Fact]
    public async Task Garbage_instead_of_a_handshake_gets_400_and_the_server_keeps_serving()
    {
        var server = await TestServer.Shared;
        await using (var raw = await RawWebSocket.OpenTcpAsync(server.Port))
        {
            await raw.SendAsync([.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 73 + 11))]);
            string response = await raw.ReadToEndAsync();
            Assert.StartsWith("HTTP/1.1 400 ", response);
        }

        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync(RawWebSocket.TextFrame("still here"));
        Assert.Equal("still here", (await ws.ReadFrameAsync())!.Text);
    }

    [Fact]
    public async Task Handshake_that_never_finishes_is_cut_off_by_the_handshake_timeout()
    {
        var server = await TestServer.Shared; // handshake timeout: 2 s
        await using var raw = await RawWebSocket.OpenTcpAsync(server.Port);
        await raw.SendAsync(Encoding.ASCII.GetBytes("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"));
        var started = System.Diagnostics.Stopwatch.StartNew();
        string rest = await raw.ReadToEndAsync(); // completes only when the server closes the connection
        Assert.DoesNotContain("101", rest);
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(0.5), RawWebSocket.Timeout);
    }

    [Fact]
    public async Task Ping_flood_from_a_peer_that_does_not_read_costs_bounded_memory_and_others_are_served()
    {
        // A separate server process, so its memory can be measured without the other tests' allocations.
        var (process, port) = await Server.ServeCommandTests.StartServerAsync();
        await using var _ = process;
        await using var flooder = await RawWebSocket.ConnectAsync(port);
        byte[] ping = RawWebSocket.Frame(9, new byte[100]);
        byte[] burst = [.. Enumerable.Range(0, 10_000).SelectMany(_ => ping)]; // ~1.1 MB per write
        await flooder.SendAsync(burst);
        long before = process.ResidentBytes();
        for (int i = 0; i < 100; i++)
        {
            await flooder.SendAsync(burst); // 1,000,000 pings, ~110 MB, while the flooder reads nothing
        }

        await flooder.SendAsync(RawWebSocket.Frame(9, "last"u8.ToArray()));

        await using (var other = await RawWebSocket.ConnectAsync(port))
        {
            await other.SendAsync(RawWebSocket.TextFrame("served"));
            Assert.Equal("served", (await other.ReadFrameAsync())!.Text);
        }

        // One pending pong is kept, not one per ping: a queued pong per ping would hold well over 100 MB here.
        long growth = process.ResidentBytes() - before;
        Assert.True(growth < 48 * 1024 * 1024, $"server RSS grew by {growth / 1024 / 1024} MB");

        // The flooder finally reads: pongs arrive, the last one answers the last ping, and far fewer than 1,000,000 came.
        int pongs = 0;
        while (true)
        {
            RawFrame? f = await flooder.ReadFrameAsync();
            Assert.Equal(10, f!.Opcode);
            pongs++;
            if (f.Text == "last")
            {
                break;
            }
        }

        Assert.True(pongs < 1_000_000, $"{pongs} pongs");
        await flooder.SendAsync(RawWebSocket.TextFrame("alive"));
        Assert.Equal("alive", (await flooder.ReadFrameAsync())!.Text);
    }
}
