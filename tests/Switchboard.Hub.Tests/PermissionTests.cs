using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Switchboard.Server;

namespace Switchboard.Hub.Tests;

/// <summary>Permissions mean what they say: empty grants, narrowed tokens, every endpoint behind the same rules, /metrics.</summary>
public class PermissionTests
{
    private static string Token(string sub, string[]? join = null, string[]? publish = null) => AuthTests.Token(sub, join: join, publish: publish);

    [Fact]
    public async Task An_empty_join_or_publish_list_allows_no_room_while_an_absent_claim_allows_all()
    {
        HubTestServer server = await AuthTests.s_server.Value;
        string room = HubTestServer.NewRoom("empty");
        await using var none = await HubClient.ConnectAsync(server.Ws, "x", query: "?access_token=" + Token("nobody", join: [], publish: []));
        Assert.Equal("forbidden", (await none.ReplyAsync(none.Send(new { type = "join", room }))).GetProperty("code").GetString());
        Assert.Equal("forbidden", (await none.ReplyAsync(none.Send(new { type = "history", room }))).GetProperty("code").GetString());
        Assert.Equal("forbidden", (await none.ReplyAsync(none.Send(new { type = "publish", room, text = "x", id = "1" }))).GetProperty("code").GetString());

        await using var all = await HubClient.ConnectAsync(server.Ws, "x", query: "?access_token=" + Token("everybody"));
        Assert.Equal("joined", HubClient.Type(await all.ReplyAsync(all.Send(new { type = "join", room }))));
        Assert.Equal(1, await all.PublishAsync(room, "allowed"));
    }

    [Fact]
    public async Task An_empty_join_list_on_ws_is_closed_with_1008()
    {
        HubTestServer server = await AuthTests.s_server.Value;
        await using var ws = await HubClient.ConnectAsync(server.Ws, "", path: "/ws", query: "?access_token=" + Token("nobody-ws", join: []));
        Protocol.WebSocketCloseStatus status = await ws.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1008, status.Code);
    }

    [Fact]
    public async Task A_refresh_with_a_narrower_token_leaves_the_rooms_it_no_longer_allows_and_says_why()
    {
        HubTestServer server = await AuthTests.s_server.Value;
        string keep = HubTestServer.NewRoom("keep"), drop = HubTestServer.NewRoom("drop");
        await using var c = await HubClient.ConnectAsync(server.Ws, "x", query: "?access_token=" + Token("ivan", join: [keep, drop]));
        Assert.Equal("joined", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "join", room = keep }))));
        Assert.Equal("joined", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "join", room = drop }))));

        Assert.Equal("refreshed", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "refresh", token = Token("ivan", join: [keep]) }))));
        JsonElement left = await c.ExpectAsync("left");
        Assert.Equal((drop, "forbidden"), (left.GetProperty("room").GetString(), left.GetProperty("reason").GetString()));
        Assert.False(left.TryGetProperty("ref", out _));

        await using var publisher = await HubClient.ConnectAsync(server.Ws, "p", query: "?access_token=" + Token("publisher"));
        await publisher.PublishAsync(drop, "not for ivan any more");
        await publisher.PublishAsync(keep, "still for ivan");
        // The drop room's message (if ivan still got it) was queued before its ack, so before anything from the keep room.
        var seen = new List<JsonElement>();
        JsonElement e;
        while (!((e = await c.NextAsync()).GetProperty("type").GetString() == "message" && e.GetProperty("room").GetString() == keep))
        {
            seen.Add(e);
        }

        seen.Add(e);
        Assert.Contains(seen, m => HubClient.Type(m) == "message" && m.GetProperty("room").GetString() == keep);
        Assert.DoesNotContain(seen, m => m.TryGetProperty("room", out JsonElement room) && room.GetString() == drop);
        Assert.Equal("forbidden", (await c.ReplyAsync(c.Send(new { type = "join", room = drop }))).GetProperty("code").GetString());
    }

    [Fact]
    public async Task With_auth_on_echo_follows_the_same_rules_as_the_hub()
    {
        HubTestServer server = await AuthTests.s_server.Value;
        string noToken = await AuthTests.HandshakeAsync(server, "/echo");
        Assert.StartsWith("HTTP/1.1 401 ", noToken);
        Assert.Contains("WWW-Authenticate: Bearer error=\"invalid_token\"", noToken);
        Assert.StartsWith("HTTP/1.1 403 ", await AuthTests.HandshakeAsync(server, "/echo?access_token=" + Token("judy"), origin: "https://evil.example"));
        Assert.StartsWith("HTTP/1.1 101 ", await AuthTests.HandshakeAsync(server, "/echo?access_token=" + Token("judy")));
    }

    [Fact]
    public async Task The_same_origin_rule_compares_the_scheme_too()
    {
        HubTestServer server = await AuthTests.s_server.Value;
        string query = "/hub?access_token=" + Token("kim");
        Assert.StartsWith("HTTP/1.1 101 ", await AuthTests.HandshakeAsync(server, query, origin: $"http://127.0.0.1:{server.Ws.Port}"));
        Assert.StartsWith("HTTP/1.1 403 ", await AuthTests.HandshakeAsync(server, query, origin: $"https://127.0.0.1:{server.Ws.Port}"));
        Assert.StartsWith("HTTP/1.1 403 ", await AuthTests.HandshakeAsync(server, query, origin: $"http://127.0.0.1:{server.Ws.Port + 1}"));
        Assert.StartsWith("HTTP/1.1 403 ", await AuthTests.HandshakeAsync(server, query, origin: "null"));
        // Behind a TLS-terminating proxy that says so, the page's own origin is https.
        Assert.StartsWith("HTTP/1.1 101 ", await AuthTests.HandshakeAsync(server, query, origin: $"https://127.0.0.1:{server.Ws.Port}", extraHeaders: "X-Forwarded-Proto: https\r\n"));
        Assert.StartsWith("HTTP/1.1 403 ", await AuthTests.HandshakeAsync(server, query, origin: $"http://127.0.0.1:{server.Ws.Port}", extraHeaders: "X-Forwarded-Proto: https\r\n"));
    }

    [Fact]
    public async Task Metrics_are_refused_with_auth_on_unless_a_metrics_token_is_set_and_presented()
    {
        HubTestServer authOn = await AuthTests.s_server.Value;
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.Forbidden, (await http.GetAsync(Http(authOn, "/metrics"))).StatusCode);

        HubTestServer withToken = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Auth = new AuthOptions { Enabled = true, SigningKey = "test-signing-key-0123456789-abcdefghij" };
            o.MetricsToken = "scrape-secret";
        });
        try
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(Http(withToken, "/metrics"))).StatusCode);
            using var wrong = new HttpRequestMessage(HttpMethod.Get, Http(withToken, "/metrics")) { Headers = { { "Authorization", "Bearer scrape-secreT" } } };
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong)).StatusCode);
            using var right = new HttpRequestMessage(HttpMethod.Get, Http(withToken, "/metrics")) { Headers = { { "Authorization", "Bearer scrape-secret" } } };
            HttpResponseMessage ok = await http.SendAsync(right);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Contains("# TYPE", await ok.Content.ReadAsStringAsync());
        }
        finally
        {
            await withToken.App.StopAsync();
        }
    }

    [Theory]
    [InlineData("http://127.0.0.1:8000", false)]
    [InlineData("http://localhost:8000;http://[::1]:8001", false)]
    [InlineData("http://0.0.0.0:8000", true)]
    [InlineData("http://*:8000", true)]
    [InlineData("http://127.0.0.1:8000;http://192.0.2.7:8000", true)]
    public void Addresses_beyond_loopback_are_recognised(string urls, bool beyond) =>
        Assert.Equal(beyond, SwitchboardServer.ListensBeyondLoopback(urls));

    [Fact]
    public async Task Start_up_warns_when_authentication_is_off_on_a_non_loopback_address()
    {
        var logs = new ListLoggerProvider();
        // Built, never started: nothing is bound, but the start-up checks have run.
        await using WebApplication open = SwitchboardServer.Build(new SwitchboardServerOptions { Urls = "http://0.0.0.0:0", Store = "memory" }, l => l.AddProvider(logs));
        Assert.Contains(logs.Lines, l => l.Contains("Authentication is off", StringComparison.Ordinal));

        var quiet = new ListLoggerProvider();
        await using WebApplication local = SwitchboardServer.Build(new SwitchboardServerOptions { Urls = "http://127.0.0.1:0", Store = "memory" }, l => l.AddProvider(quiet));
        Assert.DoesNotContain(quiet.Lines, l => l.Contains("Authentication is off", StringComparison.Ordinal));
    }

    private static Uri Http(HubTestServer server, string path) => new(new Uri(server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal)), path);
}

/// <summary>Collects log lines (for tests that check what the server says).</summary>
internal sealed class ListLoggerProvider : ILoggerProvider
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new ListLogger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class ListLogger(ListLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner._lines)
            {
                owner._lines.Add($"{logLevel} {category}: {formatter(state, exception)}");
            }
        }
    }
}
