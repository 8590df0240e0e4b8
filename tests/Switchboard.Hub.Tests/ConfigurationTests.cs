using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Switchboard.Server;

namespace Switchboard.Hub.Tests;

public class ConfigurationTests
{
    [Fact]
    public void Hub_rooms_limits_and_retention_bind_from_a_settings_file()
    {
        string file = Path.Combine(Directory.CreateTempSubdirectory("switchboard-config-").FullName, "settings.json");
        File.WriteAllText(file, """
            {
              "Switchboard": {
                "Store": "memory",
                "RetentionInterval": "00:00:30",
                "Hub": {
                  "AutoCreateRooms": false,
                  "Rooms": [ "general", "lobby" ],
                  "MaxTextBytes": 2048,
                  "HistoryOnJoin": 20,
                  "Retention": { "MaxCount": 1000 },
                  "RoomRetention": { "ephemeral": { "MaxAge": "00:10:00" } }
                },
                "Auth": { "Enabled": true, "SigningKey": "0123456789abcdef0123456789abcdef", "AllowedOrigins": [ "https://chat.example.com" ] }
              }
            }
            """);
        SwitchboardServerOptions o = SwitchboardServerOptions.Load(configFile: file);
        Assert.Empty(o.Validate());
        Assert.Equal(TimeSpan.FromSeconds(30), o.RetentionInterval);
        Assert.False(o.Hub.AutoCreateRooms);
        Assert.Equal(["general", "lobby"], o.Hub.Rooms);
        Assert.Equal((2048, 20), (o.Hub.MaxTextBytes, o.Hub.HistoryOnJoin));
        Assert.Equal(new RetentionPolicy(1000, HubOptions.DefaultRetentionAge), o.Hub.Retention); // a setting changes only what it names
        Assert.Equal(new RetentionPolicy(null, TimeSpan.FromMinutes(10)), o.Hub.RetentionFor("ephemeral"));
        Assert.Equal(new RetentionPolicy(1000, HubOptions.DefaultRetentionAge), o.Hub.RetentionFor("general"));
        Assert.Equal(new RetentionPolicy(HubOptions.DefaultRetentionCount, HubOptions.DefaultRetentionAge), new HubOptions().Retention); // binding did not change the default of other options
        Assert.True(o.Auth.Enabled);
        Assert.Equal(["https://chat.example.com"], o.Auth.AllowedOrigins);
    }

    [Fact]
    public void The_default_retention_can_be_turned_off_in_configuration()
    {
        string file = Path.Combine(Directory.CreateTempSubdirectory("switchboard-config-").FullName, "settings.json");
        File.WriteAllText(file, """{ "Switchboard": { "Hub": { "Retention": { "MaxCount": null, "MaxAge": null } } } }""");
        SwitchboardServerOptions o = SwitchboardServerOptions.Load(configFile: file);
        Assert.Equal(RetentionPolicy.Unlimited, o.Hub.Retention);
        Assert.Equal(new RetentionPolicy(HubOptions.DefaultRetentionCount, HubOptions.DefaultRetentionAge), SwitchboardServerOptions.Load().Hub.Retention);
    }

    [Fact]
    public async Task Kestrel_limits_and_the_connection_limit_come_from_configuration()
    {
        string file = Path.Combine(Directory.CreateTempSubdirectory("switchboard-config-").FullName, "settings.json");
        File.WriteAllText(file, """
            {
              "Switchboard": { "Store": "memory", "Urls": "http://127.0.0.1:0", "MaxConnections": 3 },
              "Kestrel": { "Limits": { "MaxRequestHeaderCount": 7, "MaxConcurrentConnections": 1000 } }
            }
            """);
        SwitchboardServerOptions o = SwitchboardServerOptions.Load(configFile: file);
        Assert.Equal(3, o.MaxConnections);
        await using Microsoft.AspNetCore.Builder.WebApplication app = SwitchboardServer.Build(o, _ => { });
        var kestrel = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<
            Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>>(app.Services).Value;
        Assert.Equal(7, kestrel.Limits.MaxRequestHeaderCount);
        Assert.Equal(1000, kestrel.Limits.MaxConcurrentConnections);
        Assert.Equal(TimeSpan.FromSeconds(10), kestrel.Limits.RequestHeadersTimeout); // Switchboard's own default where the file says nothing

        // And the connection limit applies: the fourth connection is refused while three are held.
        await app.StartAsync();
        int port = new Uri(SwitchboardServer.GetAddresses(app)[0]).Port;
        var held = new List<System.Net.Sockets.Socket>();
        for (int i = 0; i < 3; i++)
        {
            var (socket, status) = await RawHubSocket.TryUpgradeAsync(port);
            held.Add(socket);
            Assert.StartsWith("HTTP/1.1 101", status);
        }

        var (extra, refused) = await RawHubSocket.TryUpgradeAsync(port);
        held.Add(extra);
        Assert.StartsWith("HTTP/1.1 503", refused);
        held.ForEach(s => s.Dispose());
        await app.StopAsync();
    }

    [Theory]
    [InlineData("""{"Switchboard":{"Auth":{"Enabled":true,"SigningKey":"short"}}}""", "Switchboard:Auth:SigningKey")]
    [InlineData("""{"Switchboard":{"Auth":{"AllowedOrigins":["not an origin"]}}}""", "Switchboard:Auth:AllowedOrigins")]
    [InlineData("""{"Switchboard":{"Store":"postgres"}}""", "Switchboard:Postgres")]
    [InlineData("""{"Switchboard":{"Hub":{"Retention":{"MaxCount":0}}}}""", "retention")]
    [InlineData("""{"Switchboard":{"Hub":{"RecentCacheBytes":-1}}}""", "RecentCacheBytes")]
    [InlineData("""{"Switchboard":{"Hub":{"MaxRoomsPerConnection":0}}}""", "MaxRoomsPerConnection")]
    [InlineData("""{"Switchboard":{"Hub":{"MaxRooms":-1}}}""", "MaxRooms")]
    [InlineData("""{"Switchboard":{"Hub":{"PublishRateLimit":5,"PublishBurst":0}}}""", "PublishBurst")]
    [InlineData("""{"Switchboard":{"Hub":{"IdleRoomRelease":"-00:01:00"}}}""", "IdleRoomRelease")]
    [InlineData("""{"Switchboard":{"Transport":"uring"}}""", "Switchboard:Transport")]
    public void Invalid_settings_are_named(string json, string named)
    {
        string file = Path.Combine(Directory.CreateTempSubdirectory("switchboard-config-").FullName, "settings.json");
        File.WriteAllText(file, json);
        SwitchboardServerOptions o = SwitchboardServerOptions.Load(configFile: file);
        Assert.Contains(o.Validate(), m => m.Contains(named, StringComparison.Ordinal));
        Assert.Throws<ServerConfigurationException>(() => SwitchboardServer.Build(o));
    }

    [Fact]
    public async Task With_fast_upgrade_off_the_http_pipeline_serves_the_same_endpoints()
    {
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.FastUpgrade = false;
        });
        await using var c = await HubClient.ConnectAsync(server.Ws, "slow-path");
        Assert.Equal("joined", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "join", room = "general" }))));
        Assert.Equal(1, await c.PublishAsync("general", "via the HTTP pipeline"));
        WebSockets.WebSocketConnection echo = await WebSockets.WebSocketClient.ConnectAsync(new Uri(server.Ws, "/echo"));
        echo.SendText("echo via HTTP");
        Assert.Equal("echo via HTTP", (await echo.ReceiveAsync())!.Text);
        await echo.CloseAsync();
        await server.App.StopAsync();
    }

    [Fact]
    public async Task On_kestrels_socket_transport_the_same_endpoints_work()
    {
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Transport = "kestrel";
        });
        Assert.DoesNotContain(server.App.Services.GetServices<Microsoft.AspNetCore.Connections.IConnectionListenerFactory>(),
            f => f.GetType().Namespace == "Switchboard.WebSockets.AspNetCore.Sockets");
        await using var c = await HubClient.ConnectAsync(server.Ws, "kestrel-transport");
        Assert.Equal("joined", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "join", room = "general" }))));
        Assert.Equal(1, await c.PublishAsync("general", "over Kestrel's sockets"));
        WebSockets.WebSocketConnection echo = await WebSockets.WebSocketClient.ConnectAsync(new Uri(server.Ws, "/echo"));
        echo.SendText("echo over Kestrel's sockets");
        Assert.Equal("echo over Kestrel's sockets", (await echo.ReceiveAsync())!.Text);
        await echo.CloseAsync();
        await server.App.StopAsync();
    }

    [Fact]
    public async Task By_default_connections_are_accepted_by_switchboards_socket_transport()
    {
        HubTestServer server = await HubTestServer.StartAsync(o => o.Store = "memory");
        Assert.Contains(server.App.Services.GetServices<Microsoft.AspNetCore.Connections.IConnectionListenerFactory>(),
            f => f.GetType().Namespace == "Switchboard.WebSockets.AspNetCore.Sockets");
        await server.App.StopAsync();
    }

    [Fact]
    public async Task Without_auto_creation_only_configured_or_existing_rooms_exist()
    {
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Hub = new HubOptions { AutoCreateRooms = false, Rooms = ["lobby"] };
        });
        await using var c = await HubClient.ConnectAsync(server.Ws, "x");
        Assert.Equal("joined", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "join", room = "lobby" }))));
        Assert.Equal("room_not_found", (await c.ReplyAsync(c.Send(new { type = "join", room = "elsewhere" }))).GetProperty("code").GetString());
        Assert.Equal("room_not_found", (await c.ReplyAsync(c.Send(new { type = "publish", room = "elsewhere", text = "x", id = "1" }))).GetProperty("code").GetString());
        await server.App.StopAsync();
    }
}
