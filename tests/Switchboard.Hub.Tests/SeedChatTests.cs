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

    [Fact]
    public async Task Damaged_seed_messages_get_errors_or_broadcasts_and_the_connection_stays()
    {
        HubTestServer server = await HubTestServer.StartAsync(o => o.Store = "memory"); // its own "general" room
        try
        {
            await using var ws = await HubClient.ConnectAsync(server.Ws, "", path: "/ws");
            var random = new Random(2026);
            string[] values = ["\"hi\"", "42", "null", "[1]", "{\"a\":1}", "\"\\ud800\"", "\"\\u0000\"", "\"" + new string('x', 17_000) + "\"", "true"];
            int sent = 0, valid = 0;
            for (int i = 0; i < 150; i++)
            {
                string json = $"{{\"name\":{values[random.Next(values.Length)]},\"message\":{values[random.Next(values.Length)]}}}";
                if (random.Next(3) == 0)
                {
                    var chars = new System.Text.StringBuilder(json);
                    int at = random.Next(chars.Length);
                    chars.Remove(at, Math.Min(chars.Length - at, random.Next(1, 4)));
                    json = chars.ToString();
                }

                ws.SendRaw(json);
                sent++;
            }

            ws.SendRaw(JsonSerializer.Serialize(new { name = "end", message = "end" }));
            while (true)
            {
                JsonElement e = await ws.NextAsync();
                if (e.TryGetProperty("plain", out JsonElement plain))
                {
                    // Damage removed the leading '{': plain text, answered the seed 000 way.
                    Assert.StartsWith("Message text was: ", plain.GetString());
                    continue;
                }

                if (e.TryGetProperty("type", out JsonElement type))
                {
                    Assert.Equal("error", type.GetString());
                    Assert.Contains(e.GetProperty("code").GetString(), new[] { "bad_json", "invalid_text" });
                    continue;
                }

                // A broadcast in the seed format: name, message and a server time.
                Assert.Equal(JsonValueKind.String, e.GetProperty("name").ValueKind);
                Assert.Equal(JsonValueKind.String, e.GetProperty("time").ValueKind);
                if (e.GetProperty("message").GetString() == "end" && e.GetProperty("name").GetString() == "end")
                {
                    break;
                }

                valid++;
            }

            Assert.True(valid > 5, $"{valid} of {sent} were broadcast");
            Assert.False(ws.Closed.Task.IsCompleted);
        }
        finally
        {
            await server.App.StopAsync();
            await server.App.DisposeAsync();
        }
    }
}
