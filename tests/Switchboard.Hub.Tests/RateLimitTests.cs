using System.Text.Json;
using Microsoft.Extensions.Time.Testing;

namespace Switchboard.Hub.Tests;

/// <summary>Publishing per connection is limited when a rate is set: bursts, refill, per connection, /hub and /ws alike.</summary>
public class RateLimitTests
{
    [Fact]
    public async Task Publishes_beyond_the_burst_are_refused_until_the_allowance_refills()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Hub = new HubOptions { PublishRateLimit = 2, PublishBurst = 3, Time = time };
        });
        try
        {
            string room = HubTestServer.NewRoom();
            await using var a = await HubClient.ConnectAsync(server.Ws, "a");
            await using var b = await HubClient.ConnectAsync(server.Ws, "b");
            string[] refs = [.. Enumerable.Range(0, 5).Select(i => a.Send(new { type = "publish", room, text = "m" + i, id = "a" + i }))];
            var byRef = new Dictionary<string, JsonElement>();
            while (byRef.Count < refs.Length) // refusals come at once, acks once stored: collect them in any order
            {
                JsonElement e = await a.NextAsync();
                if (e.TryGetProperty("ref", out JsonElement r))
                {
                    byRef[r.GetString()!] = e;
                }
            }

            JsonElement[] replies = [.. refs.Select(r => byRef[r])];

            Assert.Equal(["ack", "ack", "ack", "error", "error"], replies.Select(HubClient.Type));
            Assert.Equal("rate_limited", replies[3].GetProperty("code").GetString());
            Assert.Equal(500, replies[3].GetProperty("retryAfterMs").GetInt64()); // 2 a second: the next one in half a second
            Assert.Contains("at most 2 messages a second", replies[3].GetProperty("message").GetString());

            Assert.Equal(1, await b.PublishAsync(HubTestServer.NewRoom(), "another connection has its own allowance"));

            time.Advance(TimeSpan.FromMilliseconds(500));
            Assert.Equal(4, await a.PublishAsync(room, "after the refill"));
            Assert.Equal("error", HubClient.Type(await a.ReplyAsync(a.Send(new { type = "publish", room, text = "x", id = "a9" }))));
            Assert.Equal(4, (await server.Hub.Store.ReadAfterAsync(room, 0, 100)).Count); // refused ones were not stored

            // The seed contract too: three broadcasts, then an error.
            await using var ws = await HubClient.ConnectAsync(server.Ws, "", path: "/ws");
            for (int i = 0; i < 4; i++)
            {
                ws.SendRaw(JsonSerializer.Serialize(new { name = "seed", message = "s" + i }));
            }

            var seen = new List<string>();
            while (seen.Count < 4)
            {
                JsonElement e = await ws.NextAsync();
                seen.Add(e.TryGetProperty("type", out JsonElement t) ? t.GetString() + ":" + e.GetProperty("code").GetString() : e.GetProperty("message").GetString()!);
            }

            Assert.Equal(["error:rate_limited", "s0", "s1", "s2"], seen.Order(StringComparer.Ordinal));
        }
        finally
        {
            await server.App.StopAsync();
            await server.App.DisposeAsync();
        }
    }
}
