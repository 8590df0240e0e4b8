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

    [Fact]
    public async Task Seed_001_client_logic_talks_to_our_echo()
    {
        HubTestServer server = await HubTestServer.Shared;
        string text = Seed("001");
        int start = text.IndexOf("# client.py", StringComparison.Ordinal);
        int end = text.IndexOf("In this example", start, StringComparison.Ordinal);
        string client = text[start..end];
        Assert.Contains("ws://localhost:8765", client);
        // The same program; only the address it dials is ours.
        string dir = Directory.CreateTempSubdirectory("switchboard-seed001-").FullName;
        string path = Path.Combine(dir, "client.py");
        File.WriteAllText(path, client.Replace("ws://localhost:8765", $"ws://127.0.0.1:{server.Ws.Port}/echo", StringComparison.Ordinal));

        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3", [path]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        await p.StandardInput.WriteLineAsync("hello from the seed client");
        await p.StandardInput.WriteLineAsync("κόσμε 😀");
        p.StandardInput.Close(); // input() then raises EOFError and the program ends
        string output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        Assert.Contains("Received response: hello from the seed client", output);
        Assert.Contains("Received response: κόσμε 😀", output);
    }
}
