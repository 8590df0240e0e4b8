using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Switchboard.Hub.Tests;

/// <summary>/switchboard.js used the way the README shows, from a page on another origin, in Chromium.</summary>
public class BrowserModuleTests
{
    /// <summary>The README's browser snippet, as the README has it today.</summary>
    private static string ReadmeSnippet()
    {
        string readme = File.ReadAllText(Repo.Path("README.md"));
        Match m = Regex.Match(readme, "```js\\n(?<code>import \\{ connect \\}.*?)```", RegexOptions.Singleline);
        Assert.True(m.Success, "the README has no switchboard.js snippet");
        return m.Groups["code"].Value;
    }

    [Fact]
    public async Task The_readme_snippet_works_unchanged_from_another_origin_joining_before_the_connection_is_up()
    {
        HubTestServer server = await HubTestServer.StartAsync(o => o.Store = "memory");
        await using var _ = server.App;
        string snippet = ReadmeSnippet();
        Assert.Contains("await client.join('general');", snippet); // right after connect(): before the socket is open
        string hostPort = $"127.0.0.1:{server.Ws.Port}";
        string page = $"<!DOCTYPE html><html><body><script type=\"module\">\n{snippet.Replace("127.0.0.1:8000", hostPort, StringComparison.Ordinal)}\nconsole.log('snippet done');\n</script></body></html>";

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await Chromium.LaunchAsync(playwright, otherOrigins: true);
        IPage p = await browser.NewPageAsync();
        var console = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        p.Console += (_, m) =>
        {
            console.Enqueue(m.Text);
            if (m.Text == "snippet done" || m.Type == "error")
            {
                done.TrySetResult();
            }
        };
        p.PageError += (_, e) => { console.Enqueue("page error: " + e); done.TrySetResult(); };
        await p.RouteAsync("http://another-site.test/", r => r.FulfillAsync(new() { Body = page, ContentType = "text/html" }));
        await p.GotoAsync("http://another-site.test/");
        await done.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains("snippet done", console);            // join and publish resolved: no "not connected", no CORS failure
        Assert.Contains("Alice: hello", console);           // and the message came back to the page
    }

    [Fact]
    public async Task A_deleted_history_is_followed_in_its_new_epoch_from_offset_1()
    {
        HubTestServer server = await HubTestServer.StartAsync(o => o.Store = "memory");
        await using var _ = server.App;
        Switchboard.Server.ISwitchboardHubContext hub = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions
            .GetRequiredService<Switchboard.Server.ISwitchboardHubContext>(server.App.Services);
        string room = HubTestServer.NewRoom();
        string origin = $"http://127.0.0.1:{server.Ws.Port}";
        string page = $$"""
            <!DOCTYPE html><html><body><script type="module">
            import { connect } from '{{origin}}/switchboard.js';
            const client = connect('ws://127.0.0.1:{{server.Ws.Port}}/hub', { name: 'Dee' });
            client.on('message', m => console.log(`message ${m.offset} ${m.text}`));
            client.on('reset', r => console.log(`reset ${r.room} ${r.epoch}`));
            await client.join('{{room}}');
            await client.publish('{{room}}', 'old 1');
            await client.publish('{{room}}', 'old 2');
            console.log('ready');
            </script></body></html>
            """;

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await Chromium.LaunchAsync(playwright, otherOrigins: true);
        IPage p = await browser.NewPageAsync();
        var console = new System.Collections.Concurrent.ConcurrentQueue<string>();
        p.Console += (_, m) => console.Enqueue(m.Text);
        p.PageError += (_, e) => console.Enqueue("page error: " + e);
        await p.RouteAsync("http://another-site.test/", r => r.FulfillAsync(new() { Body = page, ContentType = "text/html" }));
        await p.GotoAsync("http://another-site.test/");
        await WaitForAsync(() => console.Contains("ready") && console.Contains("message 2 old 2"), console);

        string epoch = (await hub.DeleteHistoryAsync(room))!;
        await hub.PublishAsync(room, "new 1", "n1");
        await WaitForAsync(() => console.Contains("message 1 new 1"), console); // the module's cursor (2) would have dropped it
        Assert.Contains($"reset {room} {epoch}", console);
    }

    [Fact]
    public async Task Message_ids_from_the_module_sort_by_the_time_they_were_made_and_publish_uses_them()
    {
        HubTestServer server = await HubTestServer.Shared;
        string origin = server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal).TrimEnd('/');
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await Chromium.LaunchAsync(playwright);
        IPage p = await browser.NewPageAsync();
        await p.GotoAsync(origin + "/healthz");
        // The page's clock is set around each call that makes an id (publish makes its id when called).
        string[] ids = await p.EvaluateAsync<string[]>("""
            async (room) => {
              const m = await import('/switchboard.js');
              const real = Date.now;
              const at = (ms, f) => { Date.now = () => ms; try { return f(); } finally { Date.now = real; } };
              const a = at(1764565200000, m.newId), b = at(1764565200000, m.newId), c = at(1764565200001, m.newId);
              const client = m.connect('/hub', { name: 'ids' });
              await client.join(room);
              const ack = await at(1764565200002, () => client.publish(room, 'hello'));
              client.close();
              return [a, b, c, ack.id];
            }
            """, HubTestServer.NewRoom());

        long Ms(string id) => Convert.ToInt64(id[..12], 16);
        Assert.All(ids, id => Assert.Matches("^[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$", id));
        Assert.Equal([1764565200000, 1764565200000, 1764565200001, 1764565200002], ids.Select(Ms));
        Assert.NotEqual(ids[0], ids[1]);
        Assert.True(string.CompareOrdinal(ids[0], ids[2]) < 0 && string.CompareOrdinal(ids[1], ids[2]) < 0 && string.CompareOrdinal(ids[2], ids[3]) < 0);
    }

    private static async Task WaitForAsync(Func<bool> condition, IEnumerable<string> console)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the page logged: " + string.Join(" | ", console));
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Static_client_files_carry_cors_headers()
    {
        HubTestServer server = await HubTestServer.Shared;
        using var http = new HttpClient();
        HttpResponseMessage r = await http.GetAsync(new Uri(new Uri(server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal)), "/switchboard.js"));
        Assert.Equal("*", Assert.Single(r.Headers.GetValues("Access-Control-Allow-Origin")));
    }
}
