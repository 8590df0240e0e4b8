using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Switchboard.Server;

namespace Switchboard.Hub.Tests;

/// <summary>JWT authentication, room permissions, token expiry and refresh, and the Origin rule — on a server with auth on.</summary>
public class AuthTests
{
    private const string Key = "test-signing-key-0123456789-abcdefghij";
    internal static readonly Lazy<Task<HubTestServer>> s_server = new(() => HubTestServer.StartAsync(o =>
    {
        o.Store = "memory";
        o.Auth = new AuthOptions { Enabled = true, SigningKey = Key };
    }));

    internal static readonly TokenService Tokens = new(new AuthOptions { Enabled = true, SigningKey = Key });

    internal static string Token(string sub, string? name = null, double seconds = 3600, string[]? join = null, string[]? publish = null) =>
        Tokens.Issue(sub, name, TimeSpan.FromSeconds(seconds), join, publish);

    private static string ForgedToken(string key, DateTime notBefore, DateTime expires) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Claims = new Dictionary<string, object> { ["sub"] = "mallory" },
        NotBefore = notBefore,
        IssuedAt = notBefore,
        Expires = expires,
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(key)), SecurityAlgorithms.HmacSha256),
    });

    /// <summary>Sends a WebSocket upgrade request and returns the raw HTTP response.</summary>
    internal static async Task<string> HandshakeAsync(HubTestServer server, string pathAndQuery, string? origin = null, string extraHeaders = "")
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", server.Ws.Port);
        NetworkStream s = tcp.GetStream();
        string request = $"GET {pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:{server.Ws.Port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{(origin is null ? "" : $"Origin: {origin}\r\n")}{extraHeaders}\r\n";
        await s.WriteAsync(Encoding.ASCII.GetBytes(request));
        var buf = new byte[8192];
        var sb = new StringBuilder();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (!sb.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) || (sb.ToString().StartsWith("HTTP/1.1 4", StringComparison.Ordinal) && !sb.ToString().EndsWith('\n')))
        {
            int n = await s.ReadAsync(buf, cts.Token);
            if (n == 0)
            {
                break;
            }

            sb.Append(Encoding.UTF8.GetString(buf, 0, n));
            if (sb.ToString().StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            {
                break;
            }
        }

        return sb.ToString();
    }

    /// <summary>A token signed with the server's key (so it passes the signature check) carrying <paramref name="claims"/>.</summary>
    private static string SignedToken(Dictionary<string, object> claims) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Claims = claims,
        Expires = DateTime.UtcNow.AddHours(1),
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Key)), SecurityAlgorithms.HmacSha256),
    });

    public static TheoryData<string> OddClaims => new()
    {
        "{\"sub\":42}",
        "{\"sub\":\"\"}",
        "{\"sub\":[\"a\",\"b\"]}",
        "{\"sub\":{\"id\":1}}",
        "{\"sub\":\"ok\",\"name\":{\"first\":\"x\"}}",
        "{\"sub\":\"ok\",\"name\":123}",
        "{\"sub\":\"ok\",\"join\":\"[not json\"}",
        "{\"sub\":\"ok\",\"join\":5}",
        "{\"sub\":\"ok\",\"join\":[1,2]}",
        "{\"sub\":\"ok\",\"publish\":[\"general\",null]}",
        "{\"sub\":\"ok\",\"publish\":{\"room\":\"x\"}}",
        "{\"sub\":\"ok\",\"join\":\"[\\\"a\\\",3]\"}",
    };

    /// <summary>A token signed with the server's key whose payload is exactly <paramref name="payloadJson"/> (whatever a JSON library would refuse to write).</summary>
    private static string RawSignedToken(string payloadJson)
    {
        static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        string head = B64(Encoding.UTF8.GetBytes("{\"alg\":\"HS256\",\"typ\":\"JWT\"}")) + "." + B64(Encoding.UTF8.GetBytes(payloadJson));
        byte[] signature = System.Security.Cryptography.HMACSHA256.HashData(Encoding.UTF8.GetBytes(Key), Encoding.ASCII.GetBytes(head));
        return head + "." + B64(signature);
    }

    [Theory]
    [InlineData("name", "{\"sub\":\"ok\",\"name\":\"a\\ud800b\",\"exp\":EXP}")]
    [InlineData("sub", "{\"sub\":\"x\\udc00y\",\"exp\":EXP}")]
    [InlineData("join", "{\"sub\":\"ok\",\"join\":[\"\\ud800\"],\"exp\":EXP}")]
    public async Task Signed_tokens_with_unpaired_surrogates_in_claims_get_401_and_the_server_keeps_serving(string claim, string payload)
    {
        HubTestServer server = await s_server.Value;
        string token = RawSignedToken(payload.Replace("EXP", DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture)));
        string response = await HandshakeAsync(server, "/hub?access_token=" + token);
        Assert.True(response.StartsWith("HTTP/1.1 401 ", StringComparison.Ordinal), $"{claim}: {response}");
        Assert.Contains("WWW-Authenticate: Bearer error=\"invalid_token\"", response);

        await using var other = await HubClient.ConnectAsync(server.Ws, "other", query: "?access_token=" + Token("other"));
        Assert.Equal(1, await other.PublishAsync(HubTestServer.NewRoom(), "still fine"));
    }

    [Theory]
    [MemberData(nameof(OddClaims))]
    public async Task Validly_signed_tokens_with_odd_claims_get_101_or_401_never_a_server_error(string claimsJson)
    {
        HubTestServer server = await s_server.Value;
        var claims = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(claimsJson)!.ToDictionary(kv => kv.Key, kv => (object)kv.Value);
        string response = await HandshakeAsync(server, "/hub?access_token=" + SignedToken(claims));
        Assert.True(response.StartsWith("HTTP/1.1 101 ", StringComparison.Ordinal) || response.StartsWith("HTTP/1.1 401 ", StringComparison.Ordinal), response);
        if (claimsJson.Contains("\"join\":\"[", StringComparison.Ordinal))
        {
            // A permission list that cannot be read is refused, not guessed at.
            Assert.StartsWith("HTTP/1.1 401 ", response);
            Assert.Contains("join and publish claims must be arrays of room patterns", response);
        }
    }

    [Theory]
    [InlineData("none", "A token is required")]
    [InlineData("garbage", "malformed")]
    [InlineData("wrong-key", "signature")]
    [InlineData("expired", "expired")]
    public async Task Bad_or_missing_tokens_are_refused_with_401_and_a_reason(string kind, string reason)
    {
        HubTestServer server = await s_server.Value;
        string? token = kind switch
        {
            "none" => null,
            "garbage" => "not.a.jwt",
            "wrong-key" => ForgedToken("another-key-0123456789-abcdefghijklmn", DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddHours(1)),
            _ => ForgedToken(Key, DateTime.UtcNow.AddHours(-2), DateTime.UtcNow.AddHours(-1)),
        };
        string response = await HandshakeAsync(server, "/hub" + (token is null ? "" : "?access_token=" + token));
        Assert.StartsWith("HTTP/1.1 401 ", response);
        Assert.Contains("WWW-Authenticate: Bearer error=\"invalid_token\"", response);
        Assert.Contains(reason, response, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Identity_comes_from_the_token_in_the_query_or_the_authorization_header()
    {
        HubTestServer server = await s_server.Value;
        await using var viaQuery = await HubClient.ConnectAsync(server.Ws, "ignored-name", query: "?access_token=" + Token("alice", "Alice A."));
        Assert.Equal(("alice", "Alice A."), (viaQuery.Welcome.GetProperty("user").GetString(), viaQuery.Welcome.GetProperty("name").GetString()));
        await using var viaHeader = await HubClient.ConnectAsync(server.Ws, "x", query: "", headers: [new("Authorization", "Bearer " + Token("bob"))]);
        Assert.Equal(("bob", "bob"), (viaHeader.Welcome.GetProperty("user").GetString(), viaHeader.Welcome.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Room_permissions_come_from_the_token()
    {
        HubTestServer server = await s_server.Value;
        await using var c = await HubClient.ConnectAsync(server.Ws, "x", query: "?access_token=" + Token("carol", join: ["team-*", "lobby"], publish: ["team-a"]));
        Assert.Equal("joined", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "join", room = "team-a" }))));
        Assert.Equal("joined", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "join", room = "lobby" }))));
        Assert.Equal("forbidden", (await c.ReplyAsync(c.Send(new { type = "join", room = "secret" }))).GetProperty("code").GetString());
        Assert.Equal("forbidden", (await c.ReplyAsync(c.Send(new { type = "history", room = "secret" }))).GetProperty("code").GetString());
        Assert.Equal("ack", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "publish", room = "team-a", text = "hi", id = "1" }))));
        Assert.Equal("forbidden", (await c.ReplyAsync(c.Send(new { type = "publish", room = "lobby", text = "hi", id = "2" }))).GetProperty("code").GetString());
    }

    /// <summary>A server whose deadlines run on a clock the test moves: token expiry is tested without waiting for it.</summary>
    private static async Task<(HubTestServer Server, FakeTimeProvider Time)> StartOnFakeClockAsync()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Auth = new AuthOptions { Enabled = true, SigningKey = Key };
            o.Time = time;
            o.KeepAliveInterval = TimeSpan.Zero; // a jump of the clock would otherwise outrun the keepalive pong
        });
        return (server, time);
    }

    [Fact]
    public async Task A_connection_whose_token_expires_is_closed_with_4001()
    {
        var (server, time) = await StartOnFakeClockAsync();
        try
        {
            await using var c = await HubClient.ConnectAsync(server.Ws, "x", query: "?access_token=" + Token("dave", seconds: 600));
            time.Advance(TimeSpan.FromSeconds(598));
            Assert.Equal("pong", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "ping" }))));
            Assert.False(c.Closed.Task.IsCompleted);
            time.Advance(TimeSpan.FromSeconds(3)); // past the expiry: the next heartbeat tick closes it
            Protocol.WebSocketCloseStatus status = await c.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal((4001, "Token expired"), (status.Code, status.Reason));
        }
        finally
        {
            await server.App.StopAsync();
            await server.App.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_fresh_token_presented_in_time_keeps_the_connection_open()
    {
        var (server, time) = await StartOnFakeClockAsync();
        try
        {
            await using var c = await HubClient.ConnectAsync(server.Ws, "x", query: "?access_token=" + Token("erin", seconds: 600));
            Assert.Equal("invalid_token", (await c.ReplyAsync(c.Send(new { type = "refresh", token = Token("someone-else") }))).GetProperty("code").GetString());
            Assert.Equal("invalid_token", (await c.ReplyAsync(c.Send(new { type = "refresh", token = "garbage" }))).GetProperty("code").GetString());
            Assert.Equal("refreshed", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "refresh", token = Token("erin", seconds: 3600) }))));
            time.Advance(TimeSpan.FromSeconds(1200)); // well past the first token's expiry
            Assert.Equal("pong", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "ping" }))));
            Assert.False(c.Closed.Task.IsCompleted);
            time.Advance(TimeSpan.FromSeconds(2401)); // past the fresh token's
            Assert.Equal(4001, (await c.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30))).Code);
        }
        finally
        {
            await server.App.StopAsync();
            await server.App.DisposeAsync();
        }
    }

    [Fact]
    public async Task With_auth_on_only_the_servers_own_origin_may_connect_from_a_browser()
    {
        HubTestServer server = await s_server.Value;
        string token = Token("frank");
        Assert.StartsWith("HTTP/1.1 403 ", await HandshakeAsync(server, "/hub?access_token=" + token, origin: "https://evil.example"));
        Assert.StartsWith("HTTP/1.1 101 ", await HandshakeAsync(server, "/hub?access_token=" + token, origin: $"http://127.0.0.1:{server.Ws.Port}"));
        Assert.StartsWith("HTTP/1.1 101 ", await HandshakeAsync(server, "/hub?access_token=" + token));
    }

    [Fact]
    public async Task Seed_ws_speaks_as_the_token_subject()
    {
        HubTestServer server = await s_server.Value;
        await using var ws = await HubClient.ConnectAsync(server.Ws, "", path: "/ws", query: "?access_token=" + Token("grace", "Grace H."));
        string unique = Guid.NewGuid().ToString("N");
        ws.SendRaw(JsonSerializer.Serialize(new { name = "Impostor", message = unique }));
        JsonElement m = await ws.ExpectAsync2(e => e.TryGetProperty("message", out JsonElement t) && t.GetString() == unique);
        Assert.Equal("Grace H.", m.GetProperty("name").GetString());
    }

    [Fact]
    public async Task The_token_command_issues_a_token_the_server_accepts()
    {
        HubTestServer server = await s_server.Value;
        await using var cli = PeerProcess.Start("dotnet", AppContext.BaseDirectory, ServerProcess.SwitchboardDll, "token", "--sub", "heidi", "--name", "Heidi", "--key", Key, "--ttl", "600");
        string token = (await cli.ReadLineAsync("ey")).Trim();
        Assert.Equal(0, await cli.WaitForExitAsync());
        await using var c = await HubClient.ConnectAsync(server.Ws, "x", query: "?access_token=" + token);
        Assert.Equal(("heidi", "Heidi"), (c.Welcome.GetProperty("user").GetString(), c.Welcome.GetProperty("name").GetString()));
    }
}
