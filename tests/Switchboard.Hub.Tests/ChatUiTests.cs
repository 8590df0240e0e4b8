using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Switchboard.Client;

namespace Switchboard.Hub.Tests;

/// <summary>The browser chat UI at / (and /switchboard.js under it), driven in Debian's Chromium.</summary>
public class ChatUiTests
{
    private static readonly string Shots = Repo.Path("artifacts", "screenshots");

    private static Task<IBrowser> LaunchAsync(IPlaywright playwright) => Chromium.LaunchAsync(playwright);

    private static async Task<IPage> OpenAsync(IBrowser browser, string baseUrl, string name, string room)
    {
        IBrowserContext context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1100, Height = 700 } });
        await context.AddInitScriptAsync($"if (!localStorage.getItem('switchboard.name')) {{ localStorage.setItem('switchboard.name', JSON.stringify('{name}')); localStorage.setItem('switchboard.rooms', JSON.stringify(['{room}'])); }}");
        IPage page = await context.NewPageAsync();
        await page.GotoAsync(baseUrl);
        await Assertions.Expect(page.Locator("#state")).ToHaveTextAsync("connected", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#room-title")).ToHaveTextAsync("#" + room);
        return page;
    }

    private static async Task SendAsync(IPage page, string text)
    {
        await page.FillAsync("#text", text);
        await page.PressAsync("#text", "Enter");
    }

    private static ILocator Message(IPage page, string text) =>
        page.Locator("#messages li:not(.pending) .text", new() { HasTextRegex = new Regex("^" + Regex.Escape(text) + "$") });

    [Fact]
    public async Task Two_people_chat_presence_shows_html_stays_text_and_a_reload_shows_history()
    {
        HubTestServer server = await HubTestServer.Shared;
        string baseUrl = server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal);
        string room = HubTestServer.NewRoom("ui");
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        IPage ada = await OpenAsync(browser, baseUrl, "Ada", room);
        IPage bob = await OpenAsync(browser, baseUrl, "Bob", room);

        await Assertions.Expect(ada.Locator("#member-list li")).ToHaveTextAsync(["Ada", "Bob"], new() { Timeout = 30_000 });
        await SendAsync(ada, "Hello Bob!");
        await Assertions.Expect(Message(bob, "Hello Bob!")).ToHaveCountAsync(1, new() { Timeout = 30_000 });

        // Shift+Enter is a newline, not a send.
        await bob.FillAsync("#text", "line one");
        await bob.PressAsync("#text", "Shift+Enter");
        await bob.Locator("#text").PressSequentiallyAsync("line two");
        await bob.PressAsync("#text", "Enter");
        await Assertions.Expect(Message(ada, "line one\nline two")).ToHaveCountAsync(1, new() { Timeout = 30_000 });

        const string payload = "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=1</script><b>bold</b>";
        await SendAsync(bob, payload);
        await Assertions.Expect(Message(ada, payload)).ToHaveCountAsync(1, new() { Timeout = 30_000 });
        Assert.Equal(0, await ada.Locator("#messages img, #messages script, #messages b").CountAsync());
        Assert.True(await ada.EvaluateAsync<bool>("() => window.pwned === undefined"));
        Directory.CreateDirectory(Shots);
        await ada.ScreenshotAsync(new() { Path = Path.Combine(Shots, "ui-chat.png") });
        await Assertions.Expect(ada.Locator("#load-earlier")).ToBeHiddenAsync(); // a new room has nothing earlier

        // Ada creates a second room; Bob keeps talking in the first: it shows an unread count until Ada looks.
        string second = room + "-b";
        await ada.FillAsync("#join-room", second);
        await ada.PressAsync("#join-room", "Enter");
        await Assertions.Expect(ada.Locator("#room-title")).ToHaveTextAsync("#" + second);
        await SendAsync(bob, "are you there?");
        ILocator badge = ada.Locator($"#room-list li[data-room='{room}'] .badge");
        await Assertions.Expect(badge).ToHaveTextAsync("1", new() { Timeout = 30_000 });
        await ada.ClickAsync($"#room-list li[data-room='{room}']");
        await Assertions.Expect(badge).ToHaveTextAsync("");
        await Assertions.Expect(Message(ada, "are you there?")).ToHaveCountAsync(1);

        await bob.ReloadAsync();
        await Assertions.Expect(bob.Locator("#state")).ToHaveTextAsync("connected", new() { Timeout = 30_000 });
        await Assertions.Expect(Message(bob, "Hello Bob!")).ToHaveCountAsync(1, new() { Timeout = 30_000 });
        await Assertions.Expect(Message(bob, payload)).ToHaveCountAsync(1);
        await bob.ScreenshotAsync(new() { Path = Path.Combine(Shots, "ui-after-reload.png") });

        // A phone-sized viewport still works: the room list folds away behind a button.
        await bob.SetViewportSizeAsync(390, 760);
        await Assertions.Expect(bob.Locator("#rooms")).ToBeHiddenAsync();
        await bob.ClickAsync("#toggle-rooms");
        await Assertions.Expect(bob.Locator("#rooms")).ToBeVisibleAsync();
        await bob.ScreenshotAsync(new() { Path = Path.Combine(Shots, "ui-phone.png") });
    }

    [Fact]
    public async Task With_authentication_on_the_page_asks_for_a_token_and_speaks_as_its_subject()
    {
        HubTestServer server = await AuthTests.s_server.Value;
        string token = AuthTests.Tokens.Issue("zoe", "Zoë from the token", TimeSpan.FromHours(1));
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        IPage page = await (await browser.NewContextAsync()).NewPageAsync();
        await page.GotoAsync(server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#identity")).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#token-input")).ToBeVisibleAsync();
        await page.FillAsync("#name-input", "Zoe");
        await page.FillAsync("#token-input", token);
        await page.ClickAsync("#identity-save");
        await Assertions.Expect(page.Locator("#state")).ToHaveTextAsync("connected", new() { Timeout = 30_000 });
        string unique = "authed " + Guid.NewGuid().ToString("N")[..8];
        await SendAsync(page, unique);
        await Assertions.Expect(Message(page, unique)).ToHaveCountAsync(1, new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#messages li", new() { HasText = unique }).Locator(".name")).ToHaveTextAsync("Zoë from the token");
        await Assertions.Expect(page.Locator("#member-list li", new() { HasText = "Zoë from the token" })).ToHaveCountAsync(1);
    }

    [Fact]
    public async Task History_on_join_pages_back_with_load_earlier()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom("paging");
        for (int i = 1; i <= 60; i++)
        {
            await server.Hub.PublishAsync(room, new HubIdentity("old", "Old Timer"), "old message " + i);
        }

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        IPage page = await OpenAsync(browser, server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal), "Reader", room);
        ILocator messages = page.Locator("#messages li:not(.pending):not(.date)");
        await Assertions.Expect(messages).ToHaveCountAsync(50, new() { Timeout = 30_000 }); // the last 50 on join
        await Assertions.Expect(messages.First).ToContainTextAsync("old message 11");
        await page.ClickAsync("#load-earlier");
        await Assertions.Expect(messages).ToHaveCountAsync(60);
        await Assertions.Expect(messages.First).ToContainTextAsync("old message 1");
        await Assertions.Expect(page.Locator("#load-earlier")).ToBeHiddenAsync();
    }

    [Fact]
    public async Task Through_a_server_restart_the_page_shows_reconnecting_then_every_missed_message_once_and_sends_its_queued_one()
    {
        string db = Path.Combine(Directory.CreateTempSubdirectory("switchboard-ui-").FullName, "ui.db");
        var (server, port) = await ServerProcess.StartAsync(0, "--db", db);
        string baseUrl = $"http://127.0.0.1:{port}/";
        const string room = "restart";
        var fast = new ReconnectPolicy { InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(400) };
        await using var other = await SwitchboardClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}"), new() { Name = "Other", Reconnect = fast });

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        IPage page = await OpenAsync(browser, baseUrl, "Pat", room);
        await other.PublishAsync(room, "before the restart");
        await Assertions.Expect(Message(page, "before the restart")).ToHaveCountAsync(1, new() { Timeout = 30_000 });

        server.KillHard();
        await server.WaitForExitAsync();
        await server.DisposeAsync();
        await Assertions.Expect(page.Locator("#state")).ToHaveTextAsync(new Regex("^reconnecting in \\d+s$"), new() { Timeout = 30_000 });
        await SendAsync(page, "typed while offline");
        await Assertions.Expect(page.Locator("#messages li.pending")).ToHaveCountAsync(1);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Shots, "ui-reconnecting.png") });

        // Keep the page away while the server comes back and the other side publishes: these it must catch up on.
        await page.Context.SetOfflineAsync(true);
        var (restarted, _) = await ServerProcess.StartAsync(port, "--db", db);
        await using var __ = restarted;
        for (int i = 1; i <= 5; i++)
        {
            await other.PublishAsync(room, $"missed {i}").WaitAsync(TimeSpan.FromSeconds(60));
        }

        Assert.Equal(0, await page.Locator("#messages li:not(.pending) .text", new() { HasTextString = "missed" }).CountAsync());
        await page.Context.SetOfflineAsync(false);

        await Assertions.Expect(page.Locator("#state")).ToHaveTextAsync("connected", new() { Timeout = 60_000 });
        await Assertions.Expect(Message(page, "missed 5")).ToHaveCountAsync(1, new() { Timeout = 60_000 });
        await Assertions.Expect(Message(page, "typed while offline")).ToHaveCountAsync(1, new() { Timeout = 60_000 });
        await Assertions.Expect(page.Locator("#messages li.pending")).ToHaveCountAsync(0);

        IReadOnlyList<string> shown = await page.Locator("#messages li:not(.pending) .text").AllInnerTextsAsync();
        string[] expectedMissed = ["missed 1", "missed 2", "missed 3", "missed 4", "missed 5"];
        Assert.Equal(expectedMissed, shown.Where(t => t.StartsWith("missed", StringComparison.Ordinal)).ToArray()); // once each, in order
        Assert.Single(shown, t => t == "before the restart");
        var (history, _) = await other.HistoryAsync(room, limit: 100);
        Assert.Single(history, m => m.Text == "typed while offline"); // stored once
        await page.ScreenshotAsync(new() { Path = Path.Combine(Shots, "ui-resumed.png") });
    }
}
