using System.Text.Json;

namespace Switchboard.Hub.Tests;

/// <summary>A room's memory is bounded: its recent cache by count and bytes, and an idle room gives the cache up.</summary>
public class RoomMemoryTests
{
    [Fact]
    public async Task The_recent_cache_is_bounded_in_bytes_as_well_as_in_messages()
    {
        await using var hub = new Hub(new InMemoryMessageStore(), new HubOptions { RecentCacheBytes = 200_000 });
        var who = new HubIdentity("u", "U");
        string big = new('x', 16_000); // ~48 KB each as estimated: four fit in 200,000 bytes
        for (int i = 0; i < 50; i++)
        {
            await hub.PublishAsync("big", who, big);
        }

        Assert.Equal(4, (await hub.GetRoomAsync("big", create: false))!.CachedCount);

        for (int i = 0; i < 300; i++)
        {
            await hub.PublishAsync("small", who, "hi " + i);
        }

        Assert.Equal(new HubOptions().RecentCacheSize, (await hub.GetRoomAsync("small", create: false))!.CachedCount);
    }

    [Fact]
    public async Task An_idle_room_gives_up_its_cache_and_joins_then_read_the_store()
    {
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Hub = new HubOptions { IdleCacheRelease = TimeSpan.Zero };
        });
        try
        {
            string idle = HubTestServer.NewRoom("idle"), busy = HubTestServer.NewRoom("busy");
            await using var pub = await HubClient.ConnectAsync(server.Ws, "pub");
            await using var member = await HubClient.ConnectAsync(server.Ws, "member");
            await member.ReplyAsync(member.Send(new { type = "join", room = busy }));
            for (int i = 1; i <= 60; i++)
            {
                await pub.PublishAsync(idle, "m" + i, "i" + i);
                await pub.PublishAsync(busy, "m" + i, "b" + i);
            }

            Room idleRoom = (await server.Hub.GetRoomAsync(idle, create: false))!, busyRoom = (await server.Hub.GetRoomAsync(busy, create: false))!;
            Assert.Equal(60, idleRoom.CachedCount);
            await server.Hub.ApplyRetentionAsync(); // the periodic maintenance pass
            Assert.Equal(0, idleRoom.CachedCount);
            Assert.Equal(60, busyRoom.CachedCount); // someone is in it: kept

            // Nothing is lost: a join gets the last 50 from the store, then goes live.
            await using var late = await HubClient.ConnectAsync(server.Ws, "late");
            JsonElement joined = await late.ReplyAsync(late.Send(new { type = "join", room = idle }));
            Assert.Equal(60, joined.GetProperty("offset").GetInt64());
            var offsets = new List<long>();
            while (offsets.Count < 50)
            {
                JsonElement m = await late.ExpectAsync("message");
                offsets.Add(m.GetProperty("offset").GetInt64());
                Assert.Equal("m" + offsets[^1], m.GetProperty("text").GetString());
            }

            Assert.Equal(Enumerable.Range(11, 50).Select(i => (long)i), offsets);
            await pub.PublishAsync(idle, "m61", "i61");
            Assert.Equal(61, (await late.ExpectAsync("message")).GetProperty("offset").GetInt64());
        }
        finally
        {
            await server.App.StopAsync();
            await server.App.DisposeAsync();
        }
    }
}
