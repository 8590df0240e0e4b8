using System.Text.Json;

namespace Switchboard.Hub.Tests;

/// <summary>The hub protocol at /hub over real sockets: every command, its reply, and its errors.</summary>
public class HubProtocolTests
{
    private static async Task<(HubTestServer Server, HubClient Client)> ConnectAsync(string name = "alice", string? user = null)
    {
        HubTestServer server = await HubTestServer.Shared;
        return (server, await HubClient.ConnectAsync(server.Ws, name, user));
    }

    [Fact]
    public async Task Welcome_carries_connection_id_identity_time_and_version()
    {
        var (_, c) = await ConnectAsync("Alice Example", "alice-1");
        await using var _ = c;
        Assert.False(string.IsNullOrEmpty(c.Welcome.GetProperty("connectionId").GetString()));
        Assert.Equal("alice-1", c.Welcome.GetProperty("user").GetString());
        Assert.Equal("Alice Example", c.Welcome.GetProperty("name").GetString());
        Assert.Equal(1, c.Welcome.GetProperty("protocol").GetInt32());
        DateTimeOffset t = DateTimeOffset.Parse(c.Welcome.GetProperty("serverTime").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Math.Abs((t - DateTimeOffset.UtcNow).TotalMinutes) < 5);
    }

    [Fact]
    public async Task Join_publish_ack_and_message_round_trip()
    {
        var (_, a) = await ConnectAsync("alice");
        await using var _a = a;
        string room = HubTestServer.NewRoom();
        string r = a.Send(new { type = "join", room });
        JsonElement joined = await a.ReplyAsync(r);
        Assert.Equal("joined", HubClient.Type(joined));
        Assert.Equal(room, joined.GetProperty("room").GetString());
        Assert.Equal(0, joined.GetProperty("offset").GetInt64());
        Assert.False(string.IsNullOrEmpty(joined.GetProperty("epoch").GetString()));

        string p = a.Send(new { type = "publish", room, text = "hello <b>world</b> κόσμε", id = "m-1" });
        JsonElement message = await a.ExpectAsync("message");
        Assert.Equal(1, message.GetProperty("offset").GetInt64());
        Assert.Equal("m-1", message.GetProperty("id").GetString());
        Assert.Equal("alice", message.GetProperty("from").GetString());
        Assert.Equal("hello <b>world</b> κόσμε", message.GetProperty("text").GetString());
        Assert.EndsWith("Z", message.GetProperty("time").GetString());
        JsonElement ack = await a.ReplyAsync(p);
        Assert.Equal(("ack", "m-1", room, 1L), (HubClient.Type(ack), ack.GetProperty("id").GetString(), ack.GetProperty("room").GetString(), ack.GetProperty("offset").GetInt64()));
    }

    [Fact]
    public async Task Same_id_published_twice_is_stored_once_and_acked_with_the_same_offset()
    {
        var (_, a) = await ConnectAsync("dup");
        await using var _a = a;
        string room = HubTestServer.NewRoom();
        long first = await a.PublishAsync(room, "once", "retry-me");
        await a.PublishAsync(room, "other");
        string r = a.Send(new { type = "publish", room, text = "once", id = "retry-me" });
        JsonElement ack = await a.ReplyAsync(r);
        Assert.Equal(first, ack.GetProperty("offset").GetInt64());
        Assert.True(ack.GetProperty("duplicate").GetBoolean());
        string h = a.Send(new { type = "history", room, limit = 10 });
        JsonElement history = await a.ReplyAsync(h);
        Assert.Equal(new[] { "once", "other" }, history.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("text").GetString()!).ToArray());
    }

    public static TheoryData<string, string> BadCommands => new()
    {
        { "not json at all", "bad_json" },
        { "[1,2]", "bad_command" },
        { "{\"room\":\"x\"}", "bad_command" },
        { "{\"type\":\"dance\"}", "bad_command" },
        { "{\"type\":\"join\"}", "bad_command" },
        { "{\"type\":\"join\",\"room\":\"has space\"}", "invalid_room" },
        { "{\"type\":\"join\",\"room\":\"\"}", "invalid_room" },
        { "{\"type\":\"join\",\"room\":\"lobby\\n\"}", "invalid_room" }, // a line break after a valid name
        { "{\"type\":\"publish\",\"room\":\"-lobby\",\"text\":\"hi\",\"id\":\"1\"}", "invalid_room" },
        { "{\"type\":\"join\",\"room\":\"" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" + "\"}", "invalid_room" },
        { "{\"type\":\"join\",\"room\":\"ok\",\"since\":-1}", "invalid_argument" },
        { "{\"type\":\"join\",\"room\":\"ok\",\"since\":\"x\"}", "invalid_argument" },
        { "{\"type\":\"publish\",\"room\":\"ok\",\"text\":\"\",\"id\":\"1\"}", "invalid_text" },
        { "{\"type\":\"publish\",\"room\":\"ok\",\"text\":5,\"id\":\"1\"}", "invalid_text" },
        { "{\"type\":\"publish\",\"room\":\"ok\",\"text\":\"hi\"}", "invalid_id" },
        { "{\"type\":\"leave\",\"room\":\"never-joined\"}", "not_joined" },
        { "{\"type\":\"history\",\"room\":\"ok\",\"limit\":0}", "invalid_argument" },
        // Valid JSON grammar, but an unpaired surrogate escape is not text.
        { "{\"type\":\"publish\",\"room\":\"ok\",\"text\":\"a\\ud800\",\"id\":\"1\"}", "bad_json" },
        { "{\"type\":\"join\",\"room\":\"ok\",\"epoch\":\"\\uDFFF\"}", "bad_json" },
        { "{\"type\":\"ping\",\"\\ud83c\":1}", "bad_json" },
        { "{\"type\":\"pub\\udc00lish\"}", "bad_json" },
    };

    [Theory]
    [MemberData(nameof(BadCommands))]
    public async Task Invalid_commands_get_an_error_reply_with_the_ref_and_the_connection_stays(string command, string code)
    {
        var (_, a) = await ConnectAsync("errors");
        await using var _a = a;
        string withRef = command.StartsWith('{') && command.Length > 2 ? command.Insert(1, "\"ref\":\"e1\",") : command;
        a.SendRaw(withRef);
        JsonElement error = await a.ExpectAsync("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        if (withRef != command)
        {
            Assert.Equal("e1", error.GetProperty("ref").GetString());
        }

        string r = a.Send(new { type = "ping" });
        Assert.Equal("pong", HubClient.Type(await a.ReplyAsync(r)));
    }

    [Fact]
    public async Task Escaped_surrogate_pairs_are_text_and_an_unpaired_ref_is_left_out_of_the_error()
    {
        var (_, a) = await ConnectAsync("escapes");
        await using var _a = a;
        string room = HubTestServer.NewRoom();
        a.SendRaw($"{{\"type\":\"publish\",\"room\":\"{room}\",\"text\":\"party \\ud83c\\udf89\",\"id\":\"p1\",\"ref\":\"s1\"}}");
        JsonElement ack = await a.ReplyAsync("s1");
        Assert.Equal("ack", HubClient.Type(ack));
        JsonElement history = await a.ReplyAsync(a.Send(new { type = "history", room }));
        Assert.Equal("party 🎉", history.GetProperty("messages")[0].GetProperty("text").GetString());

        a.SendRaw("{\"type\":\"ping\",\"ref\":\"\\ud800\"}");
        JsonElement error = await a.ExpectAsync("error");
        Assert.Equal("bad_json", error.GetProperty("code").GetString());
        Assert.False(error.TryGetProperty("ref", out _));
        Assert.Equal("pong", HubClient.Type(await a.ReplyAsync(a.Send(new { type = "ping" }))));
    }

    [Fact]
    public async Task Text_over_the_limit_is_refused()
    {
        var (server, a) = await ConnectAsync("big");
        await using var _a = a;
        string r = a.Send(new { type = "publish", room = "ok", text = new string('x', server.Hub.Options.MaxTextBytes + 1), id = "big" });
        Assert.Equal("invalid_text", (await a.ReplyAsync(r)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task Commands_are_limited_in_size_and_the_largest_valid_publish_fits()
    {
        var (server, a) = await ConnectAsync("size");
        await using var _a = a;

        // The largest valid publish, every character escaped in the JSON: MaxTextBytes of U+0001 is ~6 times as long.
        string text = new('\u0001', server.Hub.Options.MaxTextBytes);
        Assert.Equal("ack", HubClient.Type(await a.ReplyAsync(a.Send(new { type = "publish", room = HubTestServer.NewRoom(), text, id = "escaped" }))));

        // Anything longer than a command can be closes with 1009: the server does not buffer 16 MiB per client to refuse it.
        a.SendRaw("{\"type\":\"ping\",\"pad\":\"" + new string('x', (int)server.Hub.Options.EffectiveMaxCommandBytes) + "\"}");
        Assert.Equal(1009, (await a.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30))).Code);
    }

    [Fact]
    public async Task Joining_twice_is_an_error()
    {
        var (_, a) = await ConnectAsync("twice");
        await using var _a = a;
        string room = HubTestServer.NewRoom();
        await a.ReplyAsync(a.Send(new { type = "join", room }));
        Assert.Equal("already_joined", (await a.ReplyAsync(a.Send(new { type = "join", room }))).GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_connection_is_in_at_most_the_configured_number_of_rooms()
    {
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Hub = new HubOptions { MaxRoomsPerConnection = 3 };
        });
        try
        {
            await using var a = await HubClient.ConnectAsync(server.Ws, "a");
            await using var b = await HubClient.ConnectAsync(server.Ws, "b");
            string[] rooms = [.. Enumerable.Range(0, 4).Select(_ => HubTestServer.NewRoom())];
            foreach (string room in rooms[..3])
            {
                Assert.Equal("joined", HubClient.Type(await a.ReplyAsync(a.Send(new { type = "join", room }))));
            }

            JsonElement refused = await a.ReplyAsync(a.Send(new { type = "join", room = rooms[3] }));
            Assert.Equal("too_many_rooms", refused.GetProperty("code").GetString());
            Assert.Contains("at most 3 rooms", refused.GetProperty("message").GetString());
            Assert.Equal("joined", HubClient.Type(await b.ReplyAsync(b.Send(new { type = "join", room = rooms[3] })))); // per connection

            Assert.Equal("left", HubClient.Type(await a.ReplyAsync(a.Send(new { type = "leave", room = rooms[0] }))));
            Assert.Equal("joined", HubClient.Type(await a.ReplyAsync(a.Send(new { type = "join", room = rooms[3] }))));
        }
        finally
        {
            await server.App.StopAsync();
            await server.App.DisposeAsync();
        }
    }

    [Fact]
    public async Task Binary_message_closes_with_1003()
    {
        var (_, a) = await ConnectAsync("binary");
        await using var _a = a;
        a.Connection.Send(Protocol.MessageType.Binary, [1, 2, 3]);
        Protocol.WebSocketCloseStatus status = await a.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1003, status.Code);
    }

    [Fact]
    public async Task Leave_stops_delivery_and_is_confirmed()
    {
        var (_, a) = await ConnectAsync("leaver");
        var (_, b) = await ConnectAsync("stayer");
        await using var _a = a;
        await using var _b = b;
        string room = HubTestServer.NewRoom();
        await a.ReplyAsync(a.Send(new { type = "join", room }));
        await b.ReplyAsync(b.Send(new { type = "join", room }));
        JsonElement left = await a.ReplyAsync(a.Send(new { type = "leave", room }));
        Assert.Equal(("left", room), (HubClient.Type(left), left.GetProperty("room").GetString()));
        await b.PublishAsync(room, "after leave");
        string r = a.Send(new { type = "ping" });
        JsonElement next = await a.NextAsync();
        Assert.Equal("pong", HubClient.Type(next)); // nothing from the room came before the pong
        Assert.Equal(r, next.GetProperty("ref").GetString());
    }

    [Fact]
    public async Task History_pages_backwards_with_a_more_flag()
    {
        var (_, a) = await ConnectAsync("historian");
        await using var _a = a;
        string room = HubTestServer.NewRoom();
        for (int i = 1; i <= 25; i++)
        {
            await a.PublishAsync(room, "m" + i);
        }

        JsonElement page1 = await a.ReplyAsync(a.Send(new { type = "history", room, limit = 10 }));
        Assert.Equal(Enumerable.Range(16, 10).Select(i => (long)i), page1.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("offset").GetInt64()));
        Assert.True(page1.GetProperty("more").GetBoolean());
        JsonElement page2 = await a.ReplyAsync(a.Send(new { type = "history", room, before = 16, limit = 10 }));
        Assert.Equal(Enumerable.Range(6, 10).Select(i => (long)i), page2.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("offset").GetInt64()));
        JsonElement page3 = await a.ReplyAsync(a.Send(new { type = "history", room, before = 6, limit = 10 }));
        Assert.Equal(5, page3.GetProperty("messages").GetArrayLength());
        Assert.False(page3.GetProperty("more").GetBoolean());
    }
}
