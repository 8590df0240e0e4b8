using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Switchboard.Hub.Tests;

/// <summary>The chat UI's first-hour details, in Chromium: reconnect now, stale members, unread across reloads, leaving, own messages, dates.</summary>
public class ChatUiFirstHourTests
{
    private static Task<IBrowser> LaunchAsync(IPlaywright playwright) => Chromium.LaunchAsync(playwright);

    private static async Task<(IBrowserContext Context, IPage Page)> OpenAsync(IBrowser browser, HubTestServer server, string name, string room)
    {
        IBrowserContext context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1100, Height = 700 } });
        await context.AddInitScriptAsync($"if (!localStorage.getItem('switchboard.name')) {{ localStorage.setItem('switchboard.name', JSON.stringify('{name}')); localStorage.setItem('switchboard.rooms', JSON.stringify(['{room}'])); }}");
        IPage page = await context.NewPageAsync();
        await page.GotoAsync(server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#state")).ToHaveTextAsync("connected", new() { Timeout = 30_000 });
        return (context, page);
    }

    private static ILocator Message(IPage page, string text) =>
        page.Locator("#messages li:not(.pending)", new() { Has = page.Locator(".text", new() { HasTextRegex = new Regex("^" + Regex.Escape(text) + "$") }) });

    [Fact]
    public async Task Unread_counts_survive_a_reload_and_a_left_room_stays_left_and_own_messages_are_marked()
    {
        HubTestServer server = await HubTestServer.Shared;
        string a = HubTestServer.NewRoom("ua"), b = HubTestServer.NewRoom("ub");
        var bob = new HubIdentity("bob-ui", "Bob");
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        var (_, ada) = await OpenAsync(browser, server, "Ada", a);

        await ada.FillAsync("#join-room", b);
        await ada.PressAsync("#join-room", "Enter");
        await Assertions.Expect(ada.Locator("#room-title")).ToHaveTextAsync("#" + b);
        await server.Hub.PublishAsync(b, bob, "b1");
        await server.Hub.PublishAsync(b, bob, "b2");
        await Assertions.Expect(Message(ada, "b2")).ToHaveCountAsync(1, new() { Timeout = 30_000 }); // seen while looking at b

        await ada.FillAsync("#text", "mine");
        await ada.PressAsync("#text", "Enter");
        await Assertions.Expect(Message(ada, "mine")).ToHaveClassAsync(new Regex("\\bmine\\b"), new() { Timeout = 30_000 });
        await Assertions.Expect(Message(ada, "b1")).Not.ToHaveClassAsync(new Regex("\\bmine\\b"));

        await ada.ClickAsync($"#room-list li[data-room='{a}']");
        await server.Hub.PublishAsync(b, bob, "b3");
        ILocator badge = ada.Locator($"#room-list li[data-room='{b}'] .badge");
        await Assertions.Expect(badge).ToHaveTextAsync("1", new() { Timeout = 30_000 });

        await ada.ReloadAsync();
        await Assertions.Expect(ada.Locator("#state")).ToHaveTextAsync("connected", new() { Timeout = 30_000 });
        await Assertions.Expect(ada.Locator("#room-title")).ToHaveTextAsync("#" + a);
        await Assertions.Expect(badge).ToHaveTextAsync("1", new() { Timeout = 30_000 }); // b1, b2 and her own stay read

        await ada.ClickAsync($"#room-list li[data-room='{b}']");
        await ada.ClickAsync("#leave-room");
        await Assertions.Expect(ada.Locator($"#room-list li[data-room='{b}']")).ToHaveCountAsync(0);
        await Assertions.Expect(ada.Locator("#room-title")).ToHaveTextAsync("#" + a);
        await ada.ReloadAsync();
        await Assertions.Expect(ada.Locator("#state")).ToHaveTextAsync("connected", new() { Timeout = 30_000 });
        await Assertions.Expect(ada.Locator($"#room-list li[data-room='{b}']")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task Long_histories_have_a_line_for_each_day()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom("days");
        DateTimeOffset now = DateTimeOffset.UtcNow;
        // Written to the store before the room is first opened (as an older server would have): two earlier days.
        await server.Hub.Store.AppendAsync(room, [
            new NewMessage("d1", "old", "Old", "two days ago", now.AddDays(-2)),
            new NewMessage("d2", "old", "Old", "yesterday", now.AddDays(-1)),
        ]);
        await server.Hub.PublishAsync(room, new HubIdentity("new", "New"), "today");

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        var (_, page) = await OpenAsync(browser, server, "Reader", room);
        await Assertions.Expect(Message(page, "today")).ToHaveCountAsync(1, new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#messages li.date")).ToHaveCountAsync(3);
        await Assertions.Expect(page.Locator("#messages li").First).ToHaveClassAsync("date");
    }

    [Fact]
    public async Task While_disconnected_members_are_shown_as_unknown_and_reconnect_now_does_not_wait_for_the_backoff()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom("recon");
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        IBrowserContext context = await browser.NewContextAsync();
        bool down = false;
        IWebSocketRoute? current = null;
        // Every hub connection goes through this route: while "down", the server end closes at once (as a dead server would).
        await context.RouteWebSocketAsync(new Regex("/hub"), ws =>
        {
            if (down)
            {
                _ = ws.CloseAsync();
                return;
            }

            current = ws;
            ws.ConnectToServer();
        });
        await context.AddInitScriptAsync($"localStorage.setItem('switchboard.name', JSON.stringify('Rita')); localStorage.setItem('switchboard.rooms', JSON.stringify(['{room}']));");
        IPage page = await context.NewPageAsync();
        await page.GotoAsync(server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#state")).ToHaveTextAsync("connected", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#member-list li")).ToHaveTextAsync(["Rita"], new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#reconnect-now")).ToBeHiddenAsync();

        down = true;
        await current!.CloseAsync();
        await Assertions.Expect(page.Locator("#reconnect-now")).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#members-stale")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("body")).ToHaveClassAsync(new Regex("\\boffline\\b"));

        // Failed attempts back off; wait until the next one is far away, then let the server "return" and click.
        await page.WaitForFunctionAsync("() => window.switchboard.state === 'reconnecting' && window.switchboard.retryAt - Date.now() > 4000",
            null, new() { Timeout = 90_000, PollingInterval = 50 });
        down = false;
        await page.ClickAsync("#reconnect-now");
        await Assertions.Expect(page.Locator("#state")).ToHaveTextAsync("connected", new() { Timeout = 3_500 }); // before the backoff would have
        await Assertions.Expect(page.Locator("#members-stale")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator("body")).Not.ToHaveClassAsync(new Regex("\\boffline\\b"));
    }
}
