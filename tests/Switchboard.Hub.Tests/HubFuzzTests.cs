using Switchboard.Protocol;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Switchboard.WebSockets;

namespace Switchboard.Hub.Tests;

/// <summary>
/// Random hub commands — valid, with fields of every wrong type and size, and with their JSON damaged — from
/// several connections at once: every reply is a documented message or error, no connection is closed for it, each
/// command gets at most one reply, and the room's stored history is exactly what was acknowledged (dense offsets,
/// no message twice, nothing acked missing). FUZZ_N (commands per connection, 150) and FUZZ_SEED in the environment
/// run it longer or differently.
/// </summary>
public class HubFuzzTests
{
    private static readonly HashSet<string> ServerTypes =
        ["welcome", "joined", "message", "ack", "left", "history", "member_joined", "member_left", "gap", "lagging", "pong", "refreshed", "error"];

    private static readonly HashSet<string> ErrorCodes =
        ["bad_json", "bad_command", "invalid_room", "room_not_found", "invalid_text", "invalid_id", "invalid_argument", "not_joined", "already_joined", "too_many_rooms", "rate_limited", "forbidden", "invalid_token", "internal", "busy", "too_many_new_rooms"];

    private static JsonNode? AnyValue(Random random, Func<JsonNode?> valid) => random.Next(40) switch // a wrong value one time in six
    {
        0 => null,
        1 => JsonValue.Create(random.Next(3) switch { 0 => -1L, 1 => long.MaxValue, _ => random.Next(100) }),
        2 => JsonValue.Create(random.Next(2) == 0 ? 1.5 : 1e30),
        3 => JsonValue.Create(random.Next(2) == 0),
        4 => new JsonArray(JsonValue.Create("x"), JsonValue.Create(1)),
        5 => new JsonObject { ["nested"] = JsonValue.Create("y") },
        6 => JsonValue.Create(new string('x', random.Next(2) == 0 ? 65 : 17_000)),
        _ => valid(),
    };

    private static string RandomText(Random random)
    {
        string[] pieces = ["hello", " ", "wörld", "✓", "🎉", "\"quoted\"", "back\\slash", "\n", "\u0000", "<b>", "日本語"];
        var sb = new StringBuilder();
        for (int i = random.Next(1, 8); i > 0; i--)
        {
            sb.Append(pieces[random.Next(pieces.Length)]);
        }

        return sb.ToString();
    }

    private static string Command(Random random, string room, string otherRoom, string reference, List<string> ids)
    {
        string[] types = ["join", "leave", "publish", "publish", "publish", "history", "ping", "refresh", "subscribe", ""];
        var command = new JsonObject { ["type"] = random.Next(20) == 0 ? null : types[random.Next(types.Length)], ["ref"] = reference };
        command["room"] = AnyValue(random, () => random.Next(4) == 0 ? otherRoom : room);
        command["text"] = AnyValue(random, () => RandomText(random));
        command["id"] = AnyValue(random, () =>
        {
            if (ids.Count > 0 && random.Next(5) == 0)
            {
                return ids[random.Next(ids.Count)]; // a retry: stored once, acked as a duplicate
            }

            string id = $"{reference}-{random.Next():x}";
            ids.Add(id);
            return id;
        });
        foreach (string field in new[] { "since", "before", "limit", "epoch", "token" })
        {
            if (random.Next(3) == 0)
            {
                command[field] = AnyValue(random, () => field is "epoch" or "token" ? RandomText(random) : random.Next(0, 60));
            }
        }

        if (random.Next(6) == 0)
        {
            command.Remove(new[] { "room", "text", "id", "type" }[random.Next(4)]);
        }

        string json = command.ToJsonString();
        if (random.Next(4) == 0)
        {
            // Damage the JSON itself (as text: a WebSocket text message is always valid UTF-8).
            var chars = new StringBuilder(json);
            for (int m = random.Next(1, 4); m > 0 && chars.Length > 0; m--)
            {
                int at = random.Next(chars.Length);
                switch (random.Next(4))
                {
                    case 0: chars.Remove(at, Math.Min(chars.Length - at, random.Next(1, 6))); break;
                    case 1: chars.Insert(at, "{}[]\",:\\0e-"[random.Next(11)]); break;
                    case 2: chars.Insert(at, random.Next(2) == 0 ? "\\ud83d" : "\\uDC00"); break; // half a surrogate pair
                    default: chars[at] = (char)random.Next(32, 127); break;
                }
            }

            json = chars.ToString();
        }

        return json;
    }

    [Fact]
    public async Task Random_commands_get_documented_replies_and_leave_history_exactly_as_acknowledged()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom("fuzz"), otherRoom = HubTestServer.NewRoom("fuzz2");
        var random = new Random(int.TryParse(Environment.GetEnvironmentVariable("FUZZ_SEED"), out int seed) ? seed : 20261122);
        int perClient = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_N"), out int n) ? n : 150;
        var acked = new Dictionary<long, string>(); // offset in `room` -> id
        var replies = new Dictionary<string, int>(); // ref -> replies seen

        HubClient[] clients = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => HubClient.ConnectAsync(server.Ws, $"fuzzer{i}")));
        string[][] scripts = [.. clients.Select((_, c) =>
        {
            var ids = new List<string>();
            return Enumerable.Range(0, perClient).Select(i => Command(random, room, otherRoom, $"f{c}-{i:D4}-{random.Next():x8}", ids)).ToArray();
        })];

        await Task.WhenAll(clients.Select(async (client, c) =>
        {
            foreach (string command in scripts[c])
            {
                client.SendRaw(command);
            }

            // (Refs carry a random tail so that damaging one cannot turn it into another's.)
            // A last, valid publish: replies to one connection's commands come in order, so its ack is the last one.
            client.SendRaw(JsonSerializer.Serialize(new { type = "publish", room, text = "last", id = $"last-{c}", @ref = "last" }));
            while (true)
            {
                JsonElement e;
                try
                {
                    e = await client.NextAsync();
                }
                catch (System.Threading.Channels.ChannelClosedException)
                {
                    WebSocketCloseStatus status = await client.Closed.Task;
                    Assert.Fail($"a hub command closed connection {c}: {status.Code} {status.Reason}");
                    throw;
                }

                string type = e.GetProperty("type").GetString()!;
                Assert.Contains(type, ServerTypes);
                if (type == "error")
                {
                    Assert.Contains(e.GetProperty("code").GetString()!, ErrorCodes);
                    Assert.False(string.IsNullOrEmpty(e.GetProperty("message").GetString()));
                }

                string? reference = e.TryGetProperty("ref", out JsonElement r) ? r.ToString() : null;
                lock (replies)
                {
                    if (reference is not null && type is not ("message" or "member_joined" or "member_left" or "gap" or "lagging"))
                    {
                        replies[$"{c}:{reference}"] = replies.GetValueOrDefault($"{c}:{reference}") + 1;
                    }

                    if (type == "ack" && e.GetProperty("room").GetString() == room)
                    {
                        long offset = e.GetProperty("offset").GetInt64();
                        string id = e.GetProperty("id").GetString()!;
                        Assert.True(!acked.TryGetValue(offset, out string? seen) || seen == id, $"offset {offset} acked for {seen} and {id}");
                        acked[offset] = id;
                    }
                }

                if (type == "ack" && reference == "last")
                {
                    break;
                }
            }

            Assert.False(client.Closed.Task.IsCompleted, "a hub command closed the connection");
        }));

        Assert.All(replies, kv => Assert.True(kv.Value == 1, $"{kv.Key} got {kv.Value} replies"));

        // The stored history is exactly the acknowledged messages: offsets 1..N, each acked, none twice.
        IReadOnlyList<StoredMessage> messages = await server.Hub.Store.ReadAfterAsync(room, 0, int.MaxValue);
        Assert.Equal(Enumerable.Range(1, messages.Count).Select(i => (long)i), messages.Select(m => m.Offset));
        Assert.Equal(acked.Keys.Order(), messages.Select(m => m.Offset));
        Assert.All(messages, m => Assert.Equal(acked[m.Offset], m.Id));
        Assert.Equal(messages.Count, messages.Select(m => (m.UserId, m.Id)).Distinct().Count());
        Assert.True(messages.Count > 20, $"only {messages.Count} messages stored: the inputs hardly reached the store");

        foreach (HubClient client in clients)
        {
            await client.DisposeAsync();
        }
    }
}
