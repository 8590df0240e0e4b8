using System.Text.Json;

namespace Switchboard.Hub.Tests;

public class PresenceTests
{
    [Fact]
    public async Task Members_are_listed_on_join_and_announced_once_per_user()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom();
        await using var alice = await HubClient.ConnectAsync(server.Ws, "Alice", "alice");
        await alice.ReplyAsync(alice.Send(new { type = "join", room }));

        await using var bobTab1 = await HubClient.ConnectAsync(server.Ws, "Bob", "bob");
        JsonElement joined = await bobTab1.ReplyAsync(bobTab1.Send(new { type = "join", room }));
        Assert.Equal(new[] { "alice", "bob" }, joined.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("user").GetString()!).Order().ToArray());
        JsonElement announced = await alice.ExpectAsync("member_joined");
        Assert.Equal(("bob", "Bob", room), (announced.GetProperty("user").GetString(), announced.GetProperty("name").GetString(), announced.GetProperty("room").GetString()));

        // A second tab of the same user is the same member: no new announcement, and closing one tab keeps him.
        await using var bobTab2 = await HubClient.ConnectAsync(server.Ws, "Bob", "bob");
        JsonElement joined2 = await bobTab2.ReplyAsync(bobTab2.Send(new { type = "join", room }));
        Assert.Equal(2, joined2.GetProperty("members").GetArrayLength());
        bobTab1.Connection.Close();
        await bobTab1.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        string ping = alice.Send(new { type = "ping" });
        JsonElement next = await alice.NextAsync();
        Assert.Equal(("pong", ping), (HubClient.Type(next), next.GetProperty("ref").GetString()));

        // The last tab leaving makes him leave.
        bobTab2.Connection.Close();
        JsonElement left = await alice.ExpectAsync("member_left");
        Assert.Equal("bob", left.GetProperty("user").GetString());
    }
}

public class ResumeTests
{
    private static async Task<List<long>> ReadOffsetsAsync(HubClient c, string room, long until)
    {
        var offsets = new List<long>();
        while (offsets.Count == 0 || offsets[^1] < until)
        {
            JsonElement e = await c.ExpectAsync("message", m => m.GetProperty("room").GetString() == room);
            offsets.Add(e.GetProperty("offset").GetInt64());
        }

        return offsets;
    }

    [Fact]
    public async Task Join_since_an_offset_delivers_exactly_what_follows_then_live()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom();
        await using var pub = await HubClient.ConnectAsync(server.Ws, "pub");
        for (int i = 0; i < 10; i++)
        {
            await pub.PublishAsync(room, "m" + i);
        }

        await using var sub = await HubClient.ConnectAsync(server.Ws, "sub");
        JsonElement joined = await sub.ReplyAsync(sub.Send(new { type = "join", room, since = 5 }));
        Assert.Equal(10, joined.GetProperty("offset").GetInt64());
        Assert.Equal(new long[] { 6, 7, 8, 9, 10 }, await ReadOffsetsAsync(sub, room, 10));
        await pub.PublishAsync(room, "live");
        Assert.Equal(new long[] { 11 }, await ReadOffsetsAsync(sub, room, 11));
    }

    [Fact]
    public async Task Join_without_since_gets_the_last_n_messages()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom();
        await using var pub = await HubClient.ConnectAsync(server.Ws, "pub");
        for (int i = 0; i < 60; i++)
        {
            await pub.PublishAsync(room, "m" + i);
        }

        await using var sub = await HubClient.ConnectAsync(server.Ws, "sub");
        JsonElement joined = await sub.ReplyAsync(sub.Send(new { type = "join", room }));
        Assert.Equal(10, joined.GetProperty("from").GetInt64());
        Assert.Equal(Enumerable.Range(11, 50).Select(i => (long)i), await ReadOffsetsAsync(sub, room, 60));
    }

    [Fact]
    public async Task Join_seam_has_no_gap_and_no_duplicate_while_others_publish()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom();
        await using var p1 = await HubClient.ConnectAsync(server.Ws, "p1");
        await using var p2 = await HubClient.ConnectAsync(server.Ws, "p2");
        for (int i = 0; i < 600; i++)
        {
            p1.Send(new { type = "publish", room, text = "before" + i, id = "b" + i }); // more than the recent cache: the join reads the store
        }

        await p1.ExpectAsync("ack", a => a.GetProperty("id").GetString() == "b599");
        const int during = 1000;
        Task publishing = Task.WhenAll(
            Task.Run(async () => { for (int i = 0; i < during; i++) { p1.Send(new { type = "publish", room, text = "x", id = "p1-" + i }); await Task.Yield(); } }),
            Task.Run(async () => { for (int i = 0; i < during; i++) { p2.Send(new { type = "publish", room, text = "y", id = "p2-" + i }); await Task.Yield(); } }));

        await using var joiner = await HubClient.ConnectAsync(server.Ws, "joiner");
        joiner.Send(new { type = "join", room, since = 0 });
        await publishing;
        await p1.ExpectAsync("ack", a => a.GetProperty("id").GetString() == "p1-" + (during - 1));
        await p2.ExpectAsync("ack", a => a.GetProperty("id").GetString() == "p2-" + (during - 1));
        long total = 600 + 2 * during;
        List<long> offsets = await ReadOffsetsAsync(joiner, room, total);
        Assert.Equal(Enumerable.Range(1, (int)total).Select(i => (long)i), offsets);
    }

    [Fact]
    public async Task Resume_after_a_disconnect_gets_exactly_what_was_missed()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom();
        await using var pub = await HubClient.ConnectAsync(server.Ws, "pub");
        var sub = await HubClient.ConnectAsync(server.Ws, "sub");
        JsonElement joined = await sub.ReplyAsync(sub.Send(new { type = "join", room }));
        string epoch = joined.GetProperty("epoch").GetString()!;
        for (int i = 0; i < 5; i++)
        {
            await pub.PublishAsync(room, "seen" + i);
        }

        List<long> seen = await ReadOffsetsAsync(sub, room, 5);
        sub.Connection.Abort();
        await sub.DisposeAsync();
        for (int i = 0; i < 7; i++)
        {
            await pub.PublishAsync(room, "missed" + i);
        }

        await using var back = await HubClient.ConnectAsync(server.Ws, "sub");
        JsonElement rejoined = await back.ReplyAsync(back.Send(new { type = "join", room, since = seen[^1], epoch }));
        Assert.False(rejoined.TryGetProperty("epochChanged", out _));
        Assert.Equal(Enumerable.Range(6, 7).Select(i => (long)i), await ReadOffsetsAsync(back, room, 12));
    }

    [Fact]
    public async Task Resume_with_a_stale_epoch_is_told_and_replays_from_the_start()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom();
        await using var pub = await HubClient.ConnectAsync(server.Ws, "pub");
        for (int i = 0; i < 3; i++)
        {
            await pub.PublishAsync(room, "m" + i);
        }

        await using var sub = await HubClient.ConnectAsync(server.Ws, "sub");
        JsonElement joined = await sub.ReplyAsync(sub.Send(new { type = "join", room, since = 2, epoch = "some-other-history" }));
        Assert.True(joined.GetProperty("epochChanged").GetBoolean());
        Assert.Equal(new long[] { 1, 2, 3 }, await ReadOffsetsAsync(sub, room, 3));
    }

    [Fact]
    public async Task Resume_past_retention_is_told_with_a_gap_notice()
    {
        HubTestServer server = await HubTestServer.Shared; // room "retained" keeps 10 messages
        await using var pub = await HubClient.ConnectAsync(server.Ws, "pub");
        await using var sub = await HubClient.ConnectAsync(server.Ws, "sub");
        long head = 0;
        for (int i = 0; i < 30; i++)
        {
            head = await pub.PublishAsync("retained", "m" + i);
        }

        await server.Hub.ApplyRetentionAsync();
        long since = head - 25; // 15 of the 25 missed messages are gone
        sub.Send(new { type = "join", room = "retained", since });
        JsonElement gap = await sub.ExpectAsync("gap");
        Assert.Equal((since + 1, head - 10), (gap.GetProperty("from").GetInt64(), gap.GetProperty("to").GetInt64()));
        Assert.Equal(Enumerable.Range((int)(head - 9), 10).Select(i => (long)i), await ReadOffsetsAsync(sub, "retained", head));
    }

    [Fact]
    public async Task A_client_far_behind_catches_up_on_100000_messages_in_order_then_goes_live()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom("far");
        var from = new HubIdentity("bulk", "bulk");
        const int count = 100_000;
        var tasks = new List<Task>(count);
        for (int i = 0; i < count; i++)
        {
            tasks.Add(server.Hub.PublishAsync(room, from, "message " + i));
        }

        await Task.WhenAll(tasks);
        await using var sub = await HubClient.ConnectAsync(server.Ws, "returning");
        sub.Send(new { type = "join", room, since = 0 });
        long expected = 1;
        while (expected <= count)
        {
            JsonElement e = await sub.ExpectAsync("message");
            Assert.Equal(expected, e.GetProperty("offset").GetInt64());
            expected++;
        }

        await server.Hub.PublishAsync(room, from, "live again");
        Assert.Equal(count + 1, (await sub.ExpectAsync("message")).GetProperty("offset").GetInt64());
    }

    [Fact]
    public async Task Subscribers_cut_off_at_random_moments_resume_without_loss_or_duplicates()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom("churn");
        const int total = 1500;
        await using var pub = await HubClient.ConnectAsync(server.Ws, "pub");
        string epoch = (await pub.ReplyAsync(pub.Send(new { type = "join", room }))).GetProperty("epoch").GetString()!;

        // Publishing runs while four subscribers keep dropping their connections (abort: no closing handshake) after a
        // random number of messages and resuming from the last offset they processed.
        Task publishing = Task.Run(async () =>
        {
            for (int i = 1; i <= total; i++)
            {
                pub.Send(new { type = "publish", room, text = "m" + i, id = "m" + i });
                if (i % 50 == 0)
                {
                    await pub.ExpectAsync("ack", a => a.GetProperty("id").GetString() == "m" + i); // keep publishing spread out
                }
            }
        });

        int[] reconnects = new int[4];
        await Task.WhenAll(Enumerable.Range(0, 4).Select(s => Task.Run(async () =>
        {
            var random = new Random(s);
            long last = 0;
            while (last < total)
            {
                HubClient sub = await HubClient.ConnectAsync(server.Ws, "sub" + s);
                JsonElement joined = await sub.ReplyAsync(sub.Send(new { type = "join", room, since = last, epoch }));
                Assert.False(joined.TryGetProperty("epochChanged", out _));
                for (int take = random.Next(1, 120); take > 0 && last < total; take--)
                {
                    JsonElement m = await sub.ExpectAsync("message", e => e.GetProperty("room").GetString() == room);
                    long offset = m.GetProperty("offset").GetInt64();
                    Assert.True(offset == last + 1, $"subscriber {s} after {last} got {offset} (reconnect {reconnects[s]})");
                    Assert.Equal("m" + offset, m.GetProperty("text").GetString());
                    last = offset;
                }

                sub.Connection.Abort(); // whatever it had queued or in flight is dropped with it
                await sub.DisposeAsync();
                reconnects[s]++;
            }
        })));
        await publishing;
        Assert.All(reconnects, r => Assert.True(r > 5, $"{r} reconnects"));
    }

    [Fact]
    public async Task Nothing_from_a_room_follows_left_even_in_the_middle_of_a_catch_up()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom("left");
        for (int i = 0; i < 4000; i++)
        {
            await server.Hub.PublishAsync(room, new HubIdentity("p", "P"), "m" + i);
        }

        await using var sub = await HubClient.ConnectAsync(server.Ws, "sub");
        for (int round = 0; round < 5; round++)
        {
            // Join from the start (thousands to replay, page by page) and leave as soon as the replay has begun.
            sub.Send(new { type = "join", room, since = 0 });
            await sub.ExpectAsync("message", m => m.GetProperty("room").GetString() == room);
            string leave = sub.Send(new { type = "leave", room });
            await sub.ExpectAsync2(e => e.TryGetProperty("ref", out JsonElement r) && r.GetString() == leave);

            string ping = sub.Send(new { type = "ping" });
            JsonElement next = await sub.ExpectAsync2(e => HubClient.Type(e) != "member_left" && HubClient.Type(e) != "member_joined");
            Assert.True(HubClient.Type(next) == "pong" && next.GetProperty("ref").GetString() == ping, $"after left: {next}");
        }
    }
}
