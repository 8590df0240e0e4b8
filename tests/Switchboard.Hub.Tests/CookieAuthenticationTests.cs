using System.Net;
using System.Net.Sockets;
using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using Switchboard.Server;

namespace Switchboard.Hub.Tests;

/// <summary>
/// An app that signs its users in with a cookie: in Chromium, its own page connects to the hub as the signed-in user
/// (the browser sends the cookie with the upgrade); another origin cannot use that cookie (403), nor can nobody (401).
/// </summary>
public class CookieAuthenticationTests
{
    private const string Page = """
        <!DOCTYPE html><html><body><script>
        const ws = new WebSocket(`ws://${location.host}/hub`);
        ws.onmessage = e => { const m = JSON.parse(e.data); if (m.type === 'welcome') console.log(`welcome ${m.user} ${m.name}`); };
        ws.onclose = e => console.log(`closed ${e.code}`);
        </script></body></html>
        """;

    [Fact]
    public async Task A_signed_in_browser_connects_as_its_user_and_the_cookie_is_useless_from_another_origin()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie();
        builder.Services.AddAuthorization();
        builder.Services.AddSwitchboard(o => o.Store = "memory");
        await using WebApplication app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/login", async (HttpContext ctx, string user) =>
        {
            var identity = new ClaimsIdentity([new Claim("sub", user), new Claim("name", "Ms " + user), new Claim("join", "*"), new Claim("publish", "*")],
                CookieAuthenticationDefaults.AuthenticationScheme);
            await ctx.SignInAsync(new ClaimsPrincipal(identity));
            return Results.Text("signed in");
        });
        app.MapGet("/chat", () => Results.Content(Page, "text/html"));
        app.MapSwitchboardHub("/hub").RequireAuthorization();
        await app.StartAsync();
        string root = SwitchboardServer.GetAddresses(app)[0];

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await Chromium.LaunchAsync(playwright);
        IBrowserContext context = await browser.NewContextAsync();
        IPage page = await context.NewPageAsync();
        var welcomed = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        page.Console += (_, m) =>
        {
            if (m.Text.StartsWith("welcome ", StringComparison.Ordinal) || m.Text.StartsWith("closed ", StringComparison.Ordinal))
            {
                welcomed.TrySetResult(m.Text);
            }
        };
        await page.GotoAsync(root + "/login?user=carol");
        await page.GotoAsync(root + "/chat");
        Assert.Equal("welcome carol Ms carol", await welcomed.Task.WaitAsync(TimeSpan.FromSeconds(30)));

        // The same cookie, sent with a foreign Origin (what a page on another site would make the browser do): refused.
        string cookie = string.Join("; ", (await context.CookiesAsync([root])).Select(c => $"{c.Name}={c.Value}"));
        var uri = new Uri(root);
        Assert.StartsWith("HTTP/1.1 101", await StatusLineAsync(uri, $"Cookie: {cookie}\r\nOrigin: {root}\r\n"));
        Assert.StartsWith("HTTP/1.1 403", await StatusLineAsync(uri, $"Cookie: {cookie}\r\nOrigin: http://evil.example\r\n"));
        Assert.DoesNotContain("101", (await StatusLineAsync(uri, $"Origin: {root}\r\n"))[..12]); // no cookie: the app's policy refuses
        await app.StopAsync();
    }

    private static async Task<string> StatusLineAsync(Uri root, string headers)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(root.Host, root.Port);
        NetworkStream s = tcp.GetStream();
        await s.WriteAsync(Encoding.ASCII.GetBytes($"GET /hub HTTP/1.1\r\nHost: {root.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"));
        using var reader = new StreamReader(s, Encoding.ASCII);
        return await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(15)) ?? "";
    }
}
