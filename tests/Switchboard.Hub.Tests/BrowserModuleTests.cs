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
    public async Task Static_client_files_carry_cors_headers()
    {
        HubTestServer server = await HubTestServer.Shared;
        using var http = new HttpClient();
        HttpResponseMessage r = await http.GetAsync(new Uri(new Uri(server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal)), "/switchboard.js"));
        Assert.Equal("*", Assert.Single(r.Headers.GetValues("Access-Control-Allow-Origin")));
    }
}
