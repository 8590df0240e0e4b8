using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Switchboard.Sample;
using Switchboard.Server;

namespace Switchboard.Hub.Tests;

/// <summary>
/// The hub inside an ordinary ASP.NET Core app (samples/Switchboard.Sample): AddSwitchboard with validated options, the
/// hub mapped at /hub, and the app's own code publishing through ISwitchboardHubContext.
/// </summary>
public class EmbeddingTests
{
    [Fact]
    public async Task The_sample_shop_hosts_the_hub_and_announces_from_its_own_code()
    {
        WebApplication app = ShopApp.Build(["--urls", "http://127.0.0.1:0"]);
        await app.StartAsync();
        try
        {
            string http = SwitchboardServer.GetAddresses(app)[0];
            var ws = new Uri(http.Replace("http://", "ws://", StringComparison.Ordinal) + "/hub");
            await using var customer = await HubClient.ConnectAsync(ws, "Customer");
            await customer.ReplyAsync(customer.Send(new { type = "join", room = ShopApp.Room }));

            using var web = new HttpClient { BaseAddress = new Uri(http) };
            using JsonDocument first = JsonDocument.Parse(await (await web.PostAsync("/orders/42/shipped", null)).Content.ReadAsStringAsync());
            Assert.Equal((1L, false), (first.RootElement.GetProperty("offset").GetInt64(), first.RootElement.GetProperty("duplicate").GetBoolean()));
            JsonElement seen = await customer.ExpectAsync("message");
            Assert.Equal(("Order 42 has shipped", "Shop", "app"), (seen.GetProperty("text").GetString(), seen.GetProperty("name").GetString(), seen.GetProperty("from").GetString()));

            using JsonDocument retry = JsonDocument.Parse(await (await web.PostAsync("/orders/42/shipped", null)).Content.ReadAsStringAsync());
            Assert.True(retry.RootElement.GetProperty("duplicate").GetBoolean()); // announced once
            using JsonDocument updates = JsonDocument.Parse(await web.GetStringAsync("/orders/updates"));
            Assert.Equal(1, updates.RootElement.GetArrayLength());
            Assert.Same(SwitchboardServer.GetHub(app), app.Services.GetService(typeof(Hub))); // the hub is a service of the app
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task Invalid_options_stop_the_app_before_it_listens_naming_the_setting()
    {
        // Mapping the hub already needs the options, so validation speaks when the app is built (or, at the latest, started).
        OptionsValidationException e = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using WebApplication app = ShopApp.Build(["--urls", "http://127.0.0.1:0"], o => o.CompressionLevel = 42);
            await app.StartAsync();
        });
        Assert.Contains("Switchboard:CompressionLevel", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Settings_come_from_the_apps_configuration()
    {
        WebApplication app = ShopApp.Build(["--urls", "http://127.0.0.1:0", "--Switchboard:Hub:MaxTextBytes=5"]);
        await app.StartAsync();
        try
        {
            var ws = new Uri(SwitchboardServer.GetAddresses(app)[0].Replace("http://", "ws://", StringComparison.Ordinal) + "/hub");
            await using var c = await HubClient.ConnectAsync(ws, "c");
            JsonElement refused = await c.ReplyAsync(c.Send(new { type = "publish", room = ShopApp.Room, text = "too long", id = "1" }));
            Assert.Equal("invalid_text", refused.GetProperty("code").GetString());
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task An_app_whose_configuration_watch_covers_the_SQLite_database_is_told_at_start()
    {
        string root = Directory.CreateTempSubdirectory("switchboard-app-").FullName;
        string elsewhere = Directory.CreateTempSubdirectory("switchboard-data-").FullName;

        // ASP.NET Core's defaults: appsettings.json in the content root, reloaded on change, so the root is watched.
        IReadOnlyList<string> watched = await StartLogsAsync(root, [], Path.Combine(root, "chat.db"));
        string warning = Assert.Single(watched, l => l.StartsWith("Warning Switchboard.Server.Startup", StringComparison.Ordinal));
        Assert.Contains(Path.Combine(root, "chat.db"), warning, StringComparison.Ordinal);
        Assert.Contains("--hostBuilder:reloadConfigOnChange=false", warning, StringComparison.Ordinal);

        Assert.DoesNotContain(await StartLogsAsync(root, ["--hostBuilder:reloadConfigOnChange=false"], Path.Combine(root, "chat2.db")),
            l => l.StartsWith("Warning", StringComparison.Ordinal)); // nothing watched
        Assert.DoesNotContain(await StartLogsAsync(root, [], Path.Combine(elsewhere, "chat.db")),
            l => l.StartsWith("Warning", StringComparison.Ordinal)); // watched, but the database is not under it
    }

    private static async Task<IReadOnlyList<string>> StartLogsAsync(string contentRoot, string[] args, string database)
    {
        var logs = new ListLoggerProvider();
        WebApplicationBuilder builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = contentRoot, Args = args });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders().AddProvider(logs);
        builder.Services.AddSwitchboard(o => o.Database = database);
        await using WebApplication app = builder.Build();
        app.MapSwitchboardHub();
        await app.StartAsync();
        await app.StopAsync();
        return logs.Lines;
    }
}
