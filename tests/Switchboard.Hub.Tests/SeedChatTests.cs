using System.Text.Json;
using System.Text.RegularExpressions;

namespace Switchboard.Hub.Tests;

/// <summary>/ws: the seed chat contract, bridged to the hub's "general" room.</summary>
public class SeedChatTests
{
    [Fact]
    public async Task Message_gets_server_time_and_reaches_every_ws_client_including_the_sender_and_hub_members()
    {
        HubTestServer server = await HubTestServer.Shared;
        await using var hub = await HubClient.ConnectAsync(server.Ws, "hubber");
        await hub.ReplyAsync(hub.Send(new { type = "join", room = "general" }));
        await using var ws1 = await HubClient.ConnectAsync(server.Ws, "", path: "/ws");
        await using var ws2 = await HubClient.ConnectAsync(server.Ws, "", path: "/ws");
        string unique = Guid.NewGuid().ToString("N");
        ws1.SendRaw(JsonSerializer.Serialize(new { name = "Seedy", message = "hello " + unique }));
        foreach (HubClient c in new[] { ws1, ws2 })
        {
            JsonElement m = await c.ExpectAsync2(e => e.TryGetProperty("message", out JsonElement t) && t.GetString() == "hello " + unique);
            Assert.Equal("Seedy", m.GetProperty("name").GetString());
            Assert.Matches(new Regex("^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]$"), m.GetProperty("time").GetString());
            Assert.Equal(3, m.EnumerateObject().Count());
        }

        JsonElement hubMessage = await hub.ExpectAsync("message", e => e.GetProperty("text").GetString() == "hello " + unique);
        Assert.Equal(("Seedy", "general"), (hubMessage.GetProperty("name").GetString(), hubMessage.GetProperty("room").GetString()));

        await hub.PublishAsync("general", "from the hub " + unique);
        JsonElement back = await ws2.ExpectAsync2(e => e.TryGetProperty("message", out JsonElement t) && t.GetString() == "from the hub " + unique);
        Assert.Equal("hubber", back.GetProperty("name").GetString());
    }

    [Fact]
    public async Task Invalid_json_gets_an_error_and_the_connection_keeps_working()
    {
        HubTestServer server = await HubTestServer.Shared;
        await using var ws = await HubClient.ConnectAsync(server.Ws, "", path: "/ws");
        ws.SendRaw("{not json");
        JsonElement error = await ws.ExpectAsync2(e => e.TryGetProperty("type", out _));
        Assert.Equal("bad_json", error.GetProperty("code").GetString());
        ws.SendRaw("{\"name\":\"x\",\"message\":42}");
        Assert.Equal("bad_json", (await ws.ExpectAsync2(e => e.TryGetProperty("type", out _))).GetProperty("code").GetString());
        ws.SendRaw("{\"name\":\"x\",\"message\":\"a\\udc00b\"}"); // valid JSON grammar, but not text
        Assert.Equal("bad_json", (await ws.ExpectAsync2(e => e.TryGetProperty("type", out _))).GetProperty("code").GetString());
        string unique = Guid.NewGuid().ToString("N");
        ws.SendRaw(JsonSerializer.Serialize(new { name = "ok", message = unique }));
        await ws.ExpectAsync2(e => e.TryGetProperty("message", out JsonElement t) && t.ValueKind == JsonValueKind.String && t.GetString() == unique);
    }
}
