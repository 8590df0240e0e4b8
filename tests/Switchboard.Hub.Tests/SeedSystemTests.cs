using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Switchboard.Hub.Tests;

/// <summary>The seed articles' own programs, unmodified, as peers of our server.</summary>
public class SeedSystemTests
{
    private static string Seed(string prefix) =>
        File.ReadAllText(Directory.GetFiles(Repo.Path("..", "shared", "seeds"), prefix + "_*.txt").Single());

    /// <summary>The chat page of seed 003, exactly as the article's server serves it.</summary>
    private static string Seed003Page()
    {
        string text = Seed("003");
        int start = text.IndexOf("html = \"\"\"", StringComparison.Ordinal) + "html = \"\"\"".Length;
        int end = text.IndexOf("\"\"\"", start, StringComparison.Ordinal);
        string html = text[start..end];
        Assert.Contains("new WebSocket(`ws://localhost:8000/ws`)", html);
        return html;
    }

    [Fact]
    public async Task Seed_003_chat_page_in_two_browsers_chats_through_our_server()
    {
        HubTestServer server = await HubTestServer.Shared;
        string page = Seed003Page();
        using IPlaywright playwright = await Playwright.CreateAsync();
        // The page hard-codes ws://localhost:8000/ws; the browser's resolver maps that address to our test server's port.
        await using IBrowser browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                $"--host-resolver-rules=MAP localhost:8000 127.0.0.1:{server.Ws.Port}",
                // The page itself is served by the test (route.Fulfill), which Chromium treats as a public origin; let it reach loopback.
                "--disable-features=LocalNetworkAccessChecks"],
        });

        string unique = Guid.NewGuid().ToString("N")[..8];

        async Task SayAsync(IPage p, string message)
        {
            await p.FillAsync("#message", message);
            await p.ClickAsync("#button");
        }

        static Task SeesAsync(IPage p, string line) =>
            Assertions.Expect(p.Locator("#messages li", new() { HasTextRegex = new Regex(@"^\[\d\d:\d\d:\d\d\] " + Regex.Escape(line) + "$") }))
                .ToHaveCountAsync(1, new() { Timeout = 30_000 });

        async Task<IPage> OpenAsync(string name)
        {
            IBrowserContext context = await browser.NewContextAsync();
            IPage p = await context.NewPageAsync();
            await p.RouteAsync("http://localhost:8000/", r => r.FulfillAsync(new() { Body = page, ContentType = "text/html" }));
            await p.GotoAsync("http://localhost:8000/");
            await p.FillAsync("#name", name);

            // The page keeps its socket to itself; a message it sees come back proves the socket is open.
            await SayAsync(p, $"{name} is here {unique}");
            await SeesAsync(p, $"{name}: {name} is here {unique}");
            return p;
        }

        IPage ada = await OpenAsync("Ada");
        IPage linus = await OpenAsync("Linus");
        await SeesAsync(ada, $"Linus: Linus is here {unique}");
        await SayAsync(ada, "hello from ada " + unique);
        await SayAsync(linus, "hi ada, linus here " + unique);
        foreach (IPage p in new[] { ada, linus })
        {
            await SeesAsync(p, "Ada: hello from ada " + unique);
            await SeesAsync(p, "Linus: hi ada, linus here " + unique);
        }

        Directory.CreateDirectory(Repo.Path("artifacts", "screenshots"));
        await ada.ScreenshotAsync(new() { Path = Repo.Path("artifacts", "screenshots", "seed-003-ada.png") });
    }

    /// <summary>Seed 001's client.py, exactly as the article prints it.</summary>
    private static string Seed001Client()
    {
        string text = Seed("001");
        int start = text.IndexOf("# client.py", StringComparison.Ordinal);
        int end = text.IndexOf("In this example", start, StringComparison.Ordinal);
        string client = text[start..end];
        Assert.Contains("ws://localhost:8765", client);
        return client;
    }

    [Fact]
    public async Task Seed_001_client_unmodified_talks_to_our_server_at_its_root()
    {
        // The program dials ws://localhost:8765 (path "/"): our server listens exactly there.
        string db = Path.Combine(Directory.CreateTempSubdirectory("switchboard-seed001-").FullName, "seed.db");
        var (server, _) = await ServerProcess.StartAsync(8765, "--db", db);
        await using var _ = server;
        string dir = Directory.CreateTempSubdirectory("switchboard-seed001-").FullName;
        string path = Path.Combine(dir, "client.py");
        File.WriteAllText(path, Seed001Client());

        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3", [path]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        await p.StandardInput.WriteLineAsync("hello from the seed client");
        await p.StandardInput.WriteLineAsync("κόσμε 😀");
        p.StandardInput.Close(); // input() then raises EOFError and the program ends
        string output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        Assert.Contains("Received response: hello from the seed client", output);
        Assert.Contains("Received response: κόσμε 😀", output);

        // And "/" is still the chat UI for a browser's plain GET.
        using var http = new HttpClient();
        Assert.Contains("<html", await http.GetStringAsync("http://127.0.0.1:8765/"), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Seed_002_page_unmodified_gets_its_answer_from_our_server_root_in_chromium()
    {
        HubTestServer server = await HubTestServer.Shared;
        string text = Seed("002");
        int start = text.IndexOf("<!DOCTYPE html>", StringComparison.Ordinal);
        int end = text.IndexOf("</html>", start, StringComparison.Ordinal) + "</html>".Length;
        string page = text[start..end];
        Assert.Contains("new WebSocket('ws://localhost:7000')", page);

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                $"--host-resolver-rules=MAP localhost:7000 127.0.0.1:{server.Ws.Port}", "--disable-features=LocalNetworkAccessChecks"],
        });
        IPage p = await browser.NewPageAsync();
        var logged = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        p.Console += (_, m) => logged.TrySetResult(m.Text);
        await p.RouteAsync("http://seed002.test/", r => r.FulfillAsync(new() { Body = page, ContentType = "text/html" }));
        await p.GotoAsync("http://seed002.test/");
        Assert.Equal("How are you?", await logged.Task.WaitAsync(TimeSpan.FromSeconds(30))); // sent on open, logged on reply
    }

    [Fact]
    public async Task Seed_000_plain_text_on_ws_gets_its_reply_while_json_keeps_the_chat_contract()
    {
        HubTestServer server = await HubTestServer.StartAsync(o => o.Store = "memory"); // no other test's chat in its "general"
        await using var _ = server.App;
        // A client as seed 000's: connect to /ws, send text, print what comes back (Python's websockets, a peer we did not write).
        string dir = Directory.CreateTempSubdirectory("switchboard-seed000-").FullName;
        string path = Path.Combine(dir, "client.py");
        File.WriteAllText(path, $$"""
            import asyncio, json, websockets
            async def main():
                async with websockets.connect("ws://127.0.0.1:{{server.Ws.Port}}/ws") as ws:
                    await ws.send("Hello, friend!")
                    print(await ws.recv())
                    await ws.send(json.dumps({"name": "Seed000", "message": "json still chats"}))
                    print(await ws.recv())
            asyncio.run(main())
            """);
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3", [path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 2, output + await p.StandardError.ReadToEndAsync());
        Assert.Equal("Message text was: Hello, friend!", lines[0]);
        using var broadcast = System.Text.Json.JsonDocument.Parse(lines[1]);
        Assert.Equal(("Seed000", "json still chats"), (broadcast.RootElement.GetProperty("name").GetString(), broadcast.RootElement.GetProperty("message").GetString()));
    }
}
