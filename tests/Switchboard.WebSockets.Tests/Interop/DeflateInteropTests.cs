using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using Switchboard.Protocol;
using Switchboard.Server;

namespace Switchboard.WebSockets.Tests.Interop;

/// <summary>
/// permessage-deflate (RFC 7692) against implementations nobody here wrote: Node `ws`, Python `websockets`, Chromium
/// and .NET's own, as clients of our server and (except Chromium) as servers for our client. The server side under
/// test is /probe-deflate (context takeover both ways, every message compressed when it shrinks) and /echo (the
/// server's defaults: no context takeover).
/// </summary>
public class DeflateInteropTests
{
    internal static string Compressible(int round) => string.Join('\n', Enumerable.Range(round, 2000).Select(Conformance.CompressionTests.Chat));

    private static void AssertClientReport(string json, string name)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        JsonElement r = doc.RootElement;
        Assert.False(r.TryGetProperty("error", out JsonElement err), $"{name} reported: {err}");
        Assert.StartsWith("permessage-deflate", r.GetProperty("extensions").GetString());
        Assert.StartsWith("permessage-deflate", r.GetProperty("serverAgreed").GetString());
        foreach (string step in new[] { "compressibleEcho", "incompressibleEcho", "small", "fragmented" })
        {
            if (r.TryGetProperty(step, out JsonElement v) || step != "fragmented")
            {
                Assert.True(r.GetProperty(step).GetBoolean(), $"{name}: step '{step}' failed: {json}");
            }
        }

        Assert.Equal(4001, r.GetProperty("clientClose").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Node_ws_client_with_deflate_against_our_server()
    {
        var server = await TestServer.Shared;
        await using var peer = PeerProcess.Start("node", Repo.Path("tests", "interop", "node"), "deflate-client.mjs", server.Url("/probe-deflate?tag=nd-" + Guid.NewGuid().ToString("N")).ToString());
        string json = await peer.ReadLineAsync("{");
        AssertClientReport(json, "node");
        using JsonDocument doc = JsonDocument.Parse(json);
        // Three echoes of ~270 KB of chat lines each: compressed by us, they take a small fraction of that on the wire.
        long wire = doc.RootElement.GetProperty("wireBytesForEchoes").GetInt64();
        Assert.True(wire < 3 * Compressible(0).Length / 5, $"{wire} bytes on the wire");
        Assert.Equal(0, await peer.WaitForExitAsync());
    }

    [Fact]
    public async Task Python_websockets_client_with_deflate_against_our_server()
    {
        var server = await TestServer.Shared;
        foreach (string path in new[] { "/probe-deflate", "/echo" })
        {
            await using var peer = PeerProcess.Start("/usr/bin/python3", Repo.Path("tests", "interop", "python"), "deflate_client.py", server.Url(path).ToString());
            string json = await peer.ReadLineAsync("{");
            if (path == "/echo")
            {
                // /echo has no "ext?" command: it echoes it, which is fine; only the header matters here.
                Assert.Contains("server_no_context_takeover", json);
                json = json.Replace("\"serverAgreed\": \"ext?\"", "\"serverAgreed\": \"permessage-deflate\"", StringComparison.Ordinal);
            }

            AssertClientReport(json, "python " + path);
            Assert.Equal(0, await peer.WaitForExitAsync());
        }
    }

    private const string ChromiumScript = """
        async (url) => {
          const results = {};
          const ws = await new Promise((res, rej) => { const s = new WebSocket(url); s.binaryType = 'arraybuffer'; s.onopen = () => res(s); s.onerror = () => rej(new Error('connect failed')); });
          const next = () => new Promise((res) => { ws.onmessage = (e) => res(e.data); });
          const chat = (i) => JSON.stringify({ type: 'message', room: 'general', offset: i, from: 'alice', text: `hello number ${i}, how are you all doing today?` });
          results.extensions = ws.extensions;
          ws.send('ext?'); results.serverAgreed = await next();
          let ok = true;
          for (let r = 0; r < 3; r++) {
            const text = Array.from({ length: 2000 }, (_, i) => chat(i + r)).join('\n');
            ws.send(text); ok = ok && (await next()) === text;
          }
          results.compressibleEcho = ok;
          const noise = new Uint8Array(1024 * 1024);
          for (let i = 0; i < noise.length; i += 65536) crypto.getRandomValues(noise.subarray(i, i + 65536));
          ws.send(noise.buffer); const back = new Uint8Array(await next());
          results.incompressibleEcho = back.length === noise.length && back.every((b, i) => b === noise[i]);
          ws.send('hi'); results.small = (await next()) === 'hi';
          const closed = new Promise((res) => { ws.onclose = (e) => res({ code: e.code, reason: e.reason, wasClean: e.wasClean }); });
          ws.close(4001, 'bye from chromium');
          results.clientClose = await closed;
          return JSON.stringify(results);
        }
        """;

    [Fact]
    public async Task Chromium_negotiates_deflate_with_our_server()
    {
        var server = await TestServer.Shared;
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await ChromiumInteropTests.LaunchAsync(playwright);
        IPage page = await browser.NewPageAsync();
        await page.GotoAsync(new Uri(server.Http, "/healthz").ToString());
        string json = await page.EvaluateAsync<string>(ChromiumScript, server.Url("/probe-deflate").ToString());
        AssertClientReport(json, "chromium");
        using JsonDocument doc = JsonDocument.Parse(json);
        Assert.True(doc.RootElement.GetProperty("clientClose").GetProperty("wasClean").GetBoolean());
    }

    [Fact]
    public async Task ClientWebSocket_with_deflate_against_our_server()
    {
        var server = await TestServer.Shared;
        using var ws = new ClientWebSocket();
        ws.Options.DangerousDeflateOptions = new WebSocketDeflateOptions { ClientContextTakeover = true, ServerContextTakeover = true };
        ws.Options.CollectHttpResponseDetails = true;
        await ws.ConnectAsync(server.Url("/probe-deflate"), CancellationToken.None);
        Assert.StartsWith("permessage-deflate", ws.HttpResponseHeaders!["Sec-WebSocket-Extensions"].Single());
        await ws.SendAsync("ext?"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.StartsWith("permessage-deflate", Encoding.UTF8.GetString((await DotNetInteropTests.ReceiveWholeAsync(ws)).Data));
        for (int round = 0; round < 3; round++)
        {
            byte[] text = Encoding.UTF8.GetBytes(Compressible(round));
            await ws.SendAsync(text, WebSocketMessageType.Text, true, CancellationToken.None);
            Assert.Equal(text, (await DotNetInteropTests.ReceiveWholeAsync(ws)).Data);
        }

        await ws.CloseAsync((System.Net.WebSockets.WebSocketCloseStatus)4001, "bye", CancellationToken.None);
        Assert.Equal(4001, (int)ws.CloseStatus!);
    }

    /// <summary>Our client offering deflate against a peer echo server that accepts it; returns the connection, still open.</summary>
    private static async Task<WebSocketConnection> RunOurClientAsync(Uri url)
    {
        var handler = new RecordingHandler();
        WebSocketConnection c = await WebSocketClient.ConnectAsync(url, new WebSocketClientOptions
        {
            Handler = handler,
            Compression = true,
            Connection = new() { MaxMessageSize = 64 * 1024 * 1024, CompressionThreshold = 0 },
        });
        Assert.NotNull(c.Compression);
        for (int round = 0; round < 3; round++)
        {
            string text = Compressible(round);
            c.SendText(text);
            Assert.Equal(text, (await handler.NextAsync()).Text);
        }

        byte[] noise = new byte[1 << 20];
        Random.Shared.NextBytes(noise);
        c.Send(MessageType.Binary, noise);
        Assert.Equal(noise, (await handler.NextAsync()).Data);
        c.SendText("hi");
        Assert.Equal("hi", (await handler.NextAsync()).Text);
        c.SendText("frag:4:" + Compressible(9)); // the peer answers in fragments (compressed, RSV1 on the first)
        Assert.Equal(Compressible(9), (await handler.NextAsync()).Text);
        return c;
    }

    [Fact]
    public async Task Our_client_with_deflate_against_node_ws_server()
    {
        await using var peer = PeerProcess.Start("node", Repo.Path("tests", "interop", "node"), "server.mjs", "deflate");
        string port = (await peer.ReadLineAsync("PORT ")).Split(' ')[1];
        WebSocketConnection c = await RunOurClientAsync(new Uri($"ws://127.0.0.1:{port}/"));

        // What the server received on the wire: our three ~270 KB texts went compressed.
        var handler = new RecordingHandler();
        WebSocketConnection probe = await WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/"), new WebSocketClientOptions { Handler = handler, Compression = true });
        probe.SendText(Compressible(0));
        await handler.NextAsync();
        probe.SendText("rx?");
        long wire = long.Parse((await handler.NextAsync()).Text, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(wire < Compressible(0).Length / 5, $"{wire} bytes on the wire for {Compressible(0).Length}");
        await probe.CloseAsync(1000);

        Assert.Equal(4001, (await c.CloseAsync(4001, "bye from switchboard").WaitAsync(TimeSpan.FromSeconds(30))).Code);
    }

    [Fact]
    public async Task Our_client_with_deflate_against_python_websockets_server()
    {
        await using var peer = PeerProcess.Start("/usr/bin/python3", Repo.Path("tests", "interop", "python"), "server.py", "deflate");
        string port = (await peer.ReadLineAsync("PORT ")).Split(' ')[1];
        WebSocketConnection c = await RunOurClientAsync(new Uri($"ws://127.0.0.1:{port}/"));
        Assert.Equal(4001, (await c.CloseAsync(4001, "bye from switchboard").WaitAsync(TimeSpan.FromSeconds(30))).Code);
    }

    [Fact]
    public async Task Our_client_with_deflate_against_aspnetcore_builtin_server()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using WebApplication app = builder.Build();
        app.UseWebSockets();
        app.Map("/", async (HttpContext ctx) =>
        {
            using WebSocket ws = await ctx.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { DangerousEnableCompression = true });
            while (true)
            {
                var (type, data) = await DotNetInteropTests.ReceiveWholeAsync(ws);
                if (type == WebSocketMessageType.Close)
                {
                    await ws.CloseOutputAsync(ws.CloseStatus!.Value, ws.CloseStatusDescription, CancellationToken.None);
                    return;
                }

                string text = type == WebSocketMessageType.Text ? Encoding.UTF8.GetString(data) : "";
                if (text.StartsWith("frag:", StringComparison.Ordinal))
                {
                    byte[] all = Encoding.UTF8.GetBytes(text.Split(':', 3)[2]);
                    int size = (all.Length + 3) / 4;
                    for (int i = 0; i < all.Length; i += size)
                    {
                        await ws.SendAsync(all.AsMemory(i, Math.Min(size, all.Length - i)), WebSocketMessageType.Text, i + size >= all.Length, CancellationToken.None);
                    }
                }
                else
                {
                    await ws.SendAsync(data, type, true, CancellationToken.None);
                }
            }
        });
        await app.StartAsync();
        string address = SwitchboardServer.GetAddresses(app)[0].Replace("http://", "ws://", StringComparison.Ordinal);
        WebSocketConnection c = await RunOurClientAsync(new Uri(address + "/"));
        Assert.Equal(4001, (await c.CloseAsync(4001, "bye from switchboard").WaitAsync(TimeSpan.FromSeconds(30))).Code);
        await app.StopAsync();
    }
}

/// <summary>
/// The permessage-deflate matrix of the standard conformance cases, server role, against .NET's ClientWebSocket (a
/// peer nobody here wrote): every max_window_bits from 9 to 15 on both sides, with and without context takeover, many
/// messages from 16 bytes to 128 KiB each way, echoed back exactly.
/// </summary>
public class DeflateMatrixTests
{
    public static TheoryData<int, bool> Settings()
    {
        var data = new TheoryData<int, bool>();
        for (int bits = 9; bits <= 15; bits++)
        {
            data.Add(bits, true);
            data.Add(bits, false);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Settings))]
    public async Task Many_messages_of_every_size_round_trip_with_each_window_and_takeover(int windowBits, bool contextTakeover)
    {
        var server = await TestServer.Shared;
        using var ws = new System.Net.WebSockets.ClientWebSocket();
        ws.Options.DangerousDeflateOptions = new System.Net.WebSockets.WebSocketDeflateOptions
        {
            ClientMaxWindowBits = windowBits,
            ServerMaxWindowBits = windowBits,
            ClientContextTakeover = contextTakeover,
            ServerContextTakeover = contextTakeover,
        };
        ws.Options.CollectHttpResponseDetails = true;
        await ws.ConnectAsync(server.Url("/probe-deflate"), CancellationToken.None);
        string agreed = ws.HttpResponseHeaders!["Sec-WebSocket-Extensions"].Single();
        if (windowBits < 15)
        {
            Assert.Contains($"server_max_window_bits={windowBits}", agreed); // 15 is the default: neither side names it
        }
        Assert.Equal(!contextTakeover, agreed.Contains("server_no_context_takeover", StringComparison.Ordinal));

        var random = new Random(windowBits * 2 + (contextTakeover ? 1 : 0));
        foreach (int size in new[] { 16, 64, 256, 1024, 4096, 16384, 65536, 131072 })
        {
            for (int i = 0; i < 8; i++)
            {
                // Half compressible text (repeats within and across messages: takeover matters), half random bytes.
                byte[] message = i % 2 == 0
                    ? System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat($"message {i} of size {size}; ", size / 20 + 1))[..size])
                    : RandomBytes(random, size);
                var type = i % 2 == 0 ? System.Net.WebSockets.WebSocketMessageType.Text : System.Net.WebSockets.WebSocketMessageType.Binary;
                await ws.SendAsync(message, type, true, CancellationToken.None);
                var (receivedType, data) = await DotNetInteropTests.ReceiveWholeAsync(ws);
                Assert.Equal(type, receivedType);
                Assert.True(message.AsSpan().SequenceEqual(data), $"size {size}, message {i}");
            }
        }

        await ws.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
    }

    /// <summary>The client role: our client against ASP.NET Core's built-in server, which compresses with each window.</summary>
    [Theory]
    [MemberData(nameof(Settings))]
    public async Task Our_client_round_trips_every_size_with_each_server_window_and_takeover(int windowBits, bool contextTakeover)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using WebApplication app = builder.Build();
        app.UseWebSockets();
        app.Map("/", async (HttpContext ctx) =>
        {
            using System.Net.WebSockets.WebSocket ws = await ctx.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
            {
                DangerousEnableCompression = true,
                ServerMaxWindowBits = windowBits,
                DisableServerContextTakeover = !contextTakeover,
            });
            while (true)
            {
                var (type, data) = await DotNetInteropTests.ReceiveWholeAsync(ws);
                if (type == System.Net.WebSockets.WebSocketMessageType.Close)
                {
                    await ws.CloseOutputAsync(ws.CloseStatus!.Value, ws.CloseStatusDescription, CancellationToken.None);
                    return;
                }

                await ws.SendAsync(data, type, true, CancellationToken.None);
            }
        });
        await app.StartAsync();
        string address = SwitchboardServer.GetAddresses(app)[0].Replace("http://", "ws://", StringComparison.Ordinal);
        var handler = new RecordingHandler();
        WebSocketConnection c = await WebSocketClient.ConnectAsync(new Uri(address + "/"), new WebSocketClientOptions
        {
            Handler = handler,
            Compression = true,
            Connection = new() { MaxMessageSize = 16 * 1024 * 1024, CompressionThreshold = 0 },
        });
        Assert.NotNull(c.Compression);
        var random = new Random(windowBits);
        foreach (int size in new[] { 16, 256, 4096, 65536, 131072 })
        {
            for (int i = 0; i < 6; i++)
            {
                if (i % 2 == 0)
                {
                    string text = string.Concat(Enumerable.Repeat($"client message {i} of {size}; ", size / 24 + 1))[..size];
                    c.SendText(text);
                    Assert.Equal(text, (await handler.NextAsync()).Text);
                }
                else
                {
                    byte[] bytes = RandomBytes(random, size);
                    c.Send(MessageType.Binary, bytes);
                    Assert.Equal(bytes, (await handler.NextAsync()).Data);
                }
            }
        }

        Assert.Equal(1000, (await c.CloseAsync(1000, "done").WaitAsync(TimeSpan.FromSeconds(30))).Code);
        await app.StopAsync();
    }

    private static byte[] RandomBytes(Random random, int size)
    {
        byte[] b = new byte[size];
        random.NextBytes(b);
        return b;
    }
}
