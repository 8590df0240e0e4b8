using System.Text.Json;
using Microsoft.Playwright;

namespace Switchboard.WebSockets.Tests.Interop;

/// <summary>Chromium's WebSocket (Debian's chromium, driven by Playwright for .NET) against our server.</summary>
public class ChromiumInteropTests
{
    internal static async Task<IBrowser> LaunchAsync(IPlaywright playwright) =>
        await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });

    // Browsers cannot send fragmented messages or pings; they receive both (the server fragments and pings).
    private const string ScenarioScript = """
        async (url) => {
          const results = {};
          const open = (u) => new Promise((res, rej) => { const ws = new WebSocket(u); ws.binaryType = 'arraybuffer'; ws.onopen = () => res(ws); ws.onerror = () => rej(new Error('connect failed')); });
          const next = (ws) => new Promise((res) => { ws.onmessage = (e) => res(e.data); });
          const same = (a, b) => { if (a.byteLength !== b.byteLength) return false; const x = new Uint8Array(a), y = new Uint8Array(b); for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false; return true; };
          const ws = await open(url);
          let m;
          ws.send('hello'); m = await next(ws); results.text = m === 'hello';
          const bin = new Uint8Array([0, 1, 2, 255]).buffer;
          ws.send(bin); m = await next(ws); results.binary = m instanceof ArrayBuffer && same(m, bin);
          ws.send(''); m = await next(ws); results.emptyText = m === '';
          ws.send(new ArrayBuffer(0)); m = await next(ws); results.emptyBinary = m instanceof ArrayBuffer && m.byteLength === 0;
          const big = new Uint8Array(16 * 1024 * 1024);
          for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
          ws.send(big.buffer); m = await next(ws); results.big16MiB = same(m, big.buffer);
          ws.send('ping:from-server'); m = await next(ws); results.serverPing = m === 'pong:from-server';
          ws.send('frag:3:abcdefgh'); m = await next(ws); results.serverFragmented = m === 'abcdefgh';
          const closed = new Promise((res) => { ws.onclose = (e) => res({ code: e.code, reason: e.reason, wasClean: e.wasClean }); });
          ws.close(4001, 'bye from chromium');
          results.clientClose = await closed;
          const ws2 = await open(url.replace(/tag=[^&]*/, (t) => t + '-2'));
          const closed2 = new Promise((res) => { ws2.onclose = (e) => res({ code: e.code, reason: e.reason, wasClean: e.wasClean }); });
          ws2.send('close:4002:server bye');
          results.serverClose = await closed2;
          return JSON.stringify(results);
        }
        """;

    [Fact]
    public async Task Chromium_websocket_against_our_server()
    {
        var server = await TestServer.Shared;
        string tag = "chromium-" + Guid.NewGuid().ToString("N");
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        IPage page = await browser.NewPageAsync();
        await page.GotoAsync(new Uri(server.Http, "/healthz").ToString());
        string json = await page.EvaluateAsync<string>(ScenarioScript, server.Url("/probe?tag=" + tag).ToString());
        await Scenario.AssertForeignClientResultAsync(server, tag, json, "chromium", canFragment: false, canPing: false);
        using JsonDocument doc = JsonDocument.Parse(json);
        Assert.True(doc.RootElement.GetProperty("clientClose").GetProperty("wasClean").GetBoolean());
        Assert.True(doc.RootElement.GetProperty("serverClose").GetProperty("wasClean").GetBoolean());
    }
}
