using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Switchboard.Server;

namespace Switchboard.Hub.Tests;

/// <summary>The server API for backends: API keys, publish (committed, idempotent), history pages, presence, rooms, disconnect, ProblemDetails, OpenAPI.</summary>
public class ServerApiTests
{
    private static readonly Lazy<Task<HubTestServer>> s_server = new(() => HubTestServer.StartAsync(o =>
    {
        o.Store = "memory";
        o.Api = new ApiOptions { Keys = ["first-key-0123456789", "second-key-0123456789"] };
    }));

    private static Uri Http(HubTestServer server, string path) => new(new Uri(server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal)), path);

    private static HttpClient Client(string? key = "second-key-0123456789")
    {
        var http = new HttpClient();
        if (key is not null)
        {
            http.DefaultRequestHeaders.Add("X-Api-Key", key);
        }

        return http;
    }

    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using JsonDocument doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal((int)status, doc.RootElement.GetProperty("status").GetInt32());
        return doc.RootElement.Clone();
    }

    /// <summary>Publishes texts <paramref name="text"/>1..N with ids <paramref name="id"/>1..N through the API, each answered 200.</summary>
    private static async Task PostAsync(HttpClient http, HubTestServer server, string room, string text, string id, int count)
    {
        for (int i = 1; i <= count; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsJsonAsync(Http(server, $"/api/rooms/{room}/messages"), new { text = text + i, id = id + i })).StatusCode);
        }
    }

    [Fact]
    public async Task Without_keys_the_api_and_its_document_do_not_exist()
    {
        HubTestServer server = await HubTestServer.Shared;
        using HttpClient http = Client();
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(Http(server, "/api/rooms"))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(Http(server, "/openapi/v1.json"))).StatusCode);
    }

    [Fact]
    public async Task Only_a_configured_key_is_let_in()
    {
        HubTestServer server = await s_server.Value;
        using HttpClient none = Client(null), wrong = Client("second-key-012345678X"), first = Client("first-key-0123456789");
        JsonElement problem = await ProblemAsync(await none.GetAsync(Http(server, "/api/rooms")), HttpStatusCode.Unauthorized);
        Assert.Contains("X-Api-Key", problem.GetProperty("detail").GetString());
        await ProblemAsync(await wrong.PostAsJsonAsync(Http(server, "/api/rooms/x/messages"), new { text = "t", id = "1" }), HttpStatusCode.Unauthorized);
        Assert.Equal(HttpStatusCode.OK, (await first.GetAsync(Http(server, "/api/rooms"))).StatusCode); // either key works
    }

    [Fact]
    public async Task A_published_message_is_committed_once_per_id_and_members_see_it_like_any_publish()
    {
        HubTestServer server = await s_server.Value;
        string room = HubTestServer.NewRoom();
        await using var member = await HubClient.ConnectAsync(server.Ws, "member");
        await member.ReplyAsync(member.Send(new { type = "join", room }));
        using HttpClient http = Client();

        HttpResponseMessage first = await http.PostAsJsonAsync(Http(server, $"/api/rooms/{room}/messages"), new { text = "deploy finished", id = "build-42", name = "CI" });
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("{\"offset\":1,\"duplicate\":false}", await first.Content.ReadAsStringAsync());
        JsonElement seen = await member.ExpectAsync("message");
        Assert.Equal(("deploy finished", "CI", 1L), (seen.GetProperty("text").GetString(), seen.GetProperty("name").GetString(), seen.GetProperty("offset").GetInt64()));

        HttpResponseMessage again = await http.PostAsJsonAsync(Http(server, $"/api/rooms/{room}/messages"), new { text = "deploy finished", id = "build-42" });
        Assert.Equal("{\"offset\":1,\"duplicate\":true}", await again.Content.ReadAsStringAsync());
        HttpResponseMessage next = await http.PostAsJsonAsync(Http(server, $"/api/rooms/{room}/messages"), new { text = "next", id = "build-43" });
        Assert.Equal("{\"offset\":2,\"duplicate\":false}", await next.Content.ReadAsStringAsync());
        Assert.Equal(2, (await member.ExpectAsync("message")).GetProperty("offset").GetInt64()); // the retry was not delivered again
    }

    [Fact]
    public async Task One_message_to_many_rooms_gets_an_offset_per_room()
    {
        HubTestServer server = await s_server.Value;
        string a = HubTestServer.NewRoom(), b = HubTestServer.NewRoom();
        using HttpClient http = Client();
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsJsonAsync(Http(server, $"/api/rooms/{b}/messages"), new { text = "earlier", id = "e" })).StatusCode);
        HttpResponseMessage r = await http.PostAsJsonAsync(Http(server, "/api/publish"), new { rooms = new[] { a, b }, text = "maintenance at 22:00", id = "notice-7" });
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        using JsonDocument doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        Assert.Equal([(a, 1L), (b, 2L)], doc.RootElement.EnumerateArray().Select(e => (e.GetProperty("room").GetString()!, e.GetProperty("offset").GetInt64())).ToArray());
        await ProblemAsync(await http.PostAsJsonAsync(Http(server, "/api/publish"), new { rooms = new[] { a, a }, text = "t", id = "x" }), HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task History_is_read_in_pages_by_offset_and_rooms_and_members_are_listed()
    {
        HubTestServer server = await s_server.Value;
        string room = HubTestServer.NewRoom();
        using HttpClient http = Client();
        await PostAsync(http, server, room, "m", "id", 5);

        using JsonDocument page1 = JsonDocument.Parse(await http.GetStringAsync(Http(server, $"/api/rooms/{room}/messages?after=0&limit=3")));
        Assert.Equal(["m1", "m2", "m3"], page1.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("text").GetString()!).ToArray());
        Assert.Equal(3, page1.RootElement.GetProperty("next").GetInt64());
        using JsonDocument page2 = JsonDocument.Parse(await http.GetStringAsync(Http(server, $"/api/rooms/{room}/messages?after=3&limit=3")));
        Assert.Equal([4L, 5L], page2.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("offset").GetInt64()).ToArray());
        Assert.Equal(JsonValueKind.Null, page2.RootElement.GetProperty("next").ValueKind);
        Assert.Equal("api", page2.RootElement.GetProperty("messages")[0].GetProperty("user").GetString());

        await using var alice = await HubClient.ConnectAsync(server.Ws, "Alice", user: "alice");
        await alice.ReplyAsync(alice.Send(new { type = "join", room }));
        using JsonDocument presence = JsonDocument.Parse(await http.GetStringAsync(Http(server, $"/api/rooms/{room}/presence")));
        Assert.Equal("[{\"user\":\"alice\",\"name\":\"Alice\"}]", presence.RootElement.GetRawText());
        Assert.Contains(room, (await http.GetFromJsonAsync<string[]>(Http(server, "/api/rooms")))!);

        await ProblemAsync(await http.GetAsync(Http(server, "/api/rooms/never-was-a-room/messages")), HttpStatusCode.NotFound);
        await ProblemAsync(await http.GetAsync(Http(server, "/api/rooms/never-was-a-room/presence")), HttpStatusCode.NotFound);
        await ProblemAsync(await http.GetAsync(Http(server, $"/api/rooms/{room}/messages?limit=0")), HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Bad_input_gets_a_problem_that_says_what_is_wrong()
    {
        HubTestServer server = await s_server.Value;
        string room = HubTestServer.NewRoom();
        using HttpClient http = Client();
        JsonElement noId = await ProblemAsync(await http.PostAsJsonAsync(Http(server, $"/api/rooms/{room}/messages"), new { text = "t" }), HttpStatusCode.BadRequest);
        Assert.Contains("\"id\"", noId.GetProperty("detail").GetString());
        JsonElement tooLong = await ProblemAsync(await http.PostAsJsonAsync(Http(server, $"/api/rooms/{room}/messages"), new { text = new string('x', 20_000), id = "1" }), HttpStatusCode.BadRequest);
        Assert.Contains("\"text\"", tooLong.GetProperty("detail").GetString());
        await ProblemAsync(await http.PostAsJsonAsync(Http(server, "/api/rooms/no%20spaces/messages"), new { text = "t", id = "1" }), HttpStatusCode.BadRequest);
        HttpResponseMessage notJson = await http.PostAsync(Http(server, $"/api/rooms/{room}/messages"), new StringContent("{not json", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(Http(server, "/api/rooms/" + room))).StatusCode); // nothing else under /api
    }

    [Fact]
    public async Task A_user_can_be_disconnected()
    {
        HubTestServer server = await s_server.Value;
        await using var bob = await HubClient.ConnectAsync(server.Ws, "Bob", user: "bob-" + Guid.NewGuid().ToString("N")[..6]);
        string user = bob.Welcome.GetProperty("user").GetString()!;
        using HttpClient http = Client();
        HttpResponseMessage r = await http.PostAsync(Http(server, $"/api/users/{user}/disconnect"), null);
        Assert.Equal($"{{\"user\":\"{user}\",\"connections\":1}}", await r.Content.ReadAsStringAsync());
        Assert.Equal(4003, (await bob.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30))).Code);
    }

    [Fact]
    public async Task Deleting_a_history_starts_a_new_epoch_that_members_continue_in()
    {
        HubTestServer server = await s_server.Value;
        string room = HubTestServer.NewRoom();
        using HttpClient http = Client();
        await PostAsync(http, server, room, "old", "old", 3);

        await using var member = await HubClient.ConnectAsync(server.Ws, "member");
        JsonElement joined = await member.ReplyAsync(member.Send(new { type = "join", room }));
        string oldEpoch = joined.GetProperty("epoch").GetString()!;
        for (long offset = 1; offset <= 3; offset++)
        {
            Assert.Equal(offset, (await member.ExpectAsync("message")).GetProperty("offset").GetInt64()); // the history on join
        }

        HttpResponseMessage deleted = await http.DeleteAsync(Http(server, $"/api/rooms/{room}/messages"));
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        using JsonDocument body = JsonDocument.Parse(await deleted.Content.ReadAsStringAsync());
        string epoch = body.RootElement.GetProperty("epoch").GetString()!;
        Assert.NotEqual(oldEpoch, epoch);
        JsonElement reset = await member.ExpectAsync("reset");
        Assert.Equal((room, epoch, 0L), (reset.GetProperty("room").GetString(), reset.GetProperty("epoch").GetString(), reset.GetProperty("offset").GetInt64()));

        using JsonDocument empty = JsonDocument.Parse(await http.GetStringAsync(Http(server, $"/api/rooms/{room}/messages")));
        Assert.Equal(0, empty.RootElement.GetProperty("messages").GetArrayLength());
        HttpResponseMessage again = await http.PostAsJsonAsync(Http(server, $"/api/rooms/{room}/messages"), new { text = "new", id = "old1" }); // its old id is gone too
        Assert.Equal("{\"offset\":1,\"duplicate\":false}", await again.Content.ReadAsStringAsync());
        JsonElement next = await member.ExpectAsync("message");
        Assert.Equal(("new", 1L), (next.GetProperty("text").GetString(), next.GetProperty("offset").GetInt64()));

        // A client that was away resumes with its old epoch and offset: told the epoch changed, it gets the new history.
        await using var returning = await HubClient.ConnectAsync(server.Ws, "returning");
        JsonElement rejoined = await returning.ReplyAsync(returning.Send(new { type = "join", room, since = 3, epoch = oldEpoch }));
        Assert.True(rejoined.GetProperty("epochChanged").GetBoolean());
        Assert.Equal("new", (await returning.ExpectAsync("message")).GetProperty("text").GetString());

        await ProblemAsync(await http.DeleteAsync(Http(server, "/api/rooms/never-was-a-room/messages")), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task The_openapi_document_lists_exactly_the_api_operations()
    {
        HubTestServer server = await s_server.Value;
        using HttpClient http = Client(null); // the document is public; the operations it describes need a key
        using JsonDocument doc = JsonDocument.Parse(await http.GetStringAsync(Http(server, "/openapi/v1.json")));
        string[] operations = [.. doc.RootElement.GetProperty("paths").EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Select(m => $"{m.Name.ToUpperInvariant()} {p.Name}")).Order(StringComparer.Ordinal)];
        Assert.Equal(
        [
            "DELETE /api/rooms/{room}/messages",
            "GET /api/rooms",
            "GET /api/rooms/{room}/messages",
            "GET /api/rooms/{room}/presence",
            "POST /api/publish",
            "POST /api/rooms/{room}/messages",
            "POST /api/users/{user}/disconnect",
        ], operations);
    }
}
