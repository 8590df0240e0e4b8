using Microsoft.Extensions.Time.Testing;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Switchboard.Server;

namespace Switchboard.Hub.Tests;

/// <summary>New rooms are bounded per connection and per server, in rate and in total, by joining and by publishing alike.</summary>
public class RoomCreationLimitTests
{
    [Fact]
    public async Task A_connection_creates_at_most_its_allowance_of_new_rooms_then_again_as_it_refills()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Hub = new HubOptions { NewRoomsPerConnectionPerMinute = 4, NewRoomsPerMinute = 1000, Time = time };
        });
        try
        {
            await using var c = await HubClient.ConnectAsync(server.Ws, "creator");
            string prefix = HubTestServer.NewRoom("new")[..20];
            for (int i = 0; i < 2; i++)
            {
                Assert.Equal("joined", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "join", room = $"{prefix}-j{i}" }))));
                Assert.Equal(1, await c.PublishAsync($"{prefix}-p{i}", "creates the room"));
            }

            // The fifth new room, by publishing or by joining: refused, and nothing stored.
            JsonElement refused = await c.ReplyAsync(c.Send(new { type = "publish", room = $"{prefix}-p9", text = "x", id = "x" }));
            Assert.Equal("too_many_new_rooms", refused.GetProperty("code").GetString());
            Assert.Equal(15_000, refused.GetProperty("retryAfterMs").GetInt64()); // 4 a minute: one every 15 s
            Assert.Equal("too_many_new_rooms", (await c.ReplyAsync(c.Send(new { type = "join", room = $"{prefix}-j9" }))).GetProperty("code").GetString());
            Assert.DoesNotContain($"{prefix}-p9", await server.Hub.Store.ListRoomsAsync());

            // Rooms that exist are not new: publishing and joining there still work.
            Assert.Equal(2, await c.PublishAsync($"{prefix}-p0", "an existing room"));
            Assert.Equal("left", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "leave", room = $"{prefix}-j0" }))));
            Assert.Equal("joined", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "join", room = $"{prefix}-j0" }))));

            // Another connection has its own allowance; this one gets a room back every 15 s.
            await using var other = await HubClient.ConnectAsync(server.Ws, "other");
            Assert.Equal(1, await other.PublishAsync($"{prefix}-o1", "own allowance"));
            time.Advance(TimeSpan.FromSeconds(15));
            Assert.Equal(1, await c.PublishAsync($"{prefix}-p9", "after the refill"));
        }
        finally
        {
            await server.App.StopAsync();
        }
    }

    [Fact]
    public async Task The_server_creates_at_most_its_allowance_of_new_rooms_whoever_asks()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Hub = new HubOptions { NewRoomsPerConnectionPerMinute = 5, NewRoomsPerMinute = 8, Time = time };
        });
        try
        {
            string prefix = HubTestServer.NewRoom("srv")[..20];
            var replies = new List<string>();
            for (int conn = 0; conn < 3; conn++)
            {
                await using var c = await HubClient.ConnectAsync(server.Ws, "c" + conn);
                for (int i = 0; i < 4; i++)
                {
                    JsonElement r = await c.ReplyAsync(c.Send(new { type = "join", room = $"{prefix}-{conn}-{i}" }));
                    replies.Add(HubClient.Type(r) == "joined" ? "joined" : r.GetProperty("code").GetString()!);
                }
            }

            Assert.Equal(8, replies.Count(r => r == "joined"));
            Assert.Equal(4, replies.Count(r => r == "too_many_new_rooms"));
            Assert.Equal(["joined", "joined", "joined", "joined"], replies.Take(4));
        }
        finally
        {
            await server.App.StopAsync();
        }
    }

    [Fact]
    public async Task The_server_creates_no_room_past_its_total_and_its_rooms_still_work()
    {
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Hub = new HubOptions { MaxRooms = 4, PublishRateLimit = 0, NewRoomsPerConnectionPerMinute = 0, NewRoomsPerMinute = 0 };
            o.Api = new ApiOptions { Keys = ["limit-key-0123456789"] };
        });
        try
        {
            Assert.Equal(1, server.Hub.KnownRooms); // "general"
            await using var c = await HubClient.ConnectAsync(server.Ws, "creator");
            Assert.Equal("joined", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "join", room = "one" }))));
            Assert.Equal(1, await c.PublishAsync("two", "creates the room"));
            Assert.Equal(1, await c.PublishAsync("three", "the last one that fits"));
            Assert.Equal(4, server.Hub.KnownRooms);

            // One more, by publishing, by joining, or through the server API: refused, nothing created or stored.
            JsonElement refused = await c.ReplyAsync(c.Send(new { type = "publish", room = "four", text = "x", id = "x" }));
            Assert.Equal("room_limit", refused.GetProperty("code").GetString());
            Assert.False(refused.TryGetProperty("retryAfterMs", out _)); // waiting does not help
            Assert.Equal("room_limit", (await c.ReplyAsync(c.Send(new { type = "join", room = "four" }))).GetProperty("code").GetString());
            using var http = new HttpClient();
            http.DefaultRequestHeaders.Add("X-Api-Key", "limit-key-0123456789");
            Uri api = new(new Uri(server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal)), "/api/rooms/four/messages");
            Assert.Equal((HttpStatusCode)507, (await http.PostAsJsonAsync(api, new { text = "x", id = "y" })).StatusCode);
            Assert.DoesNotContain("four", await server.Hub.Store.ListRoomsAsync());
            Assert.DoesNotContain("four", server.Hub.ListRooms());
            Assert.Equal(4, server.Hub.KnownRooms);

            // The rooms it has keep working, for everyone.
            Assert.Equal(2, await c.PublishAsync("two", "an existing room"));
            await using var other = await HubClient.ConnectAsync(server.Ws, "other");
            Assert.Equal("joined", HubClient.Type(await other.ReplyAsync(other.Send(new { type = "join", room = "three" }))));
            Assert.Equal(1, await other.PublishAsync("general", "the default room"));
        }
        finally
        {
            await server.App.StopAsync();
        }
    }
}
