using Microsoft.Playwright;

namespace Switchboard.Hub.Tests;

/// <summary>Debian's Chromium, headless, as the browser tests launch it.</summary>
internal static class Chromium
{
    /// <summary>
    /// Launches it. <paramref name="otherOrigins"/>: pages served from made-up origins (routed by the test) may open
    /// WebSockets to the loopback server (Chromium's local-network checks would refuse them).
    /// </summary>
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright, bool otherOrigins = false) => playwright.Chromium.LaunchAsync(new()
    {
        ExecutablePath = "/usr/bin/chromium",
        Headless = true,
        Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            .. otherOrigins ? new[] { "--disable-features=LocalNetworkAccessChecks" } : []],
    });
}
