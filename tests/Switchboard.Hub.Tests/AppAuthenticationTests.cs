using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Switchboard.Server;

namespace Switchboard.Hub.Tests;

/// <summary>
/// An app that already authenticates with JwtBearer (RS256, the public key read from a PEM file) authorizes hub
/// connections with its own scheme and policy; the hub takes the user, name and rooms from the principal, failing closed.
/// </summary>
public class AppAuthenticationTests
{
    [Fact]
    public async Task An_apps_JwtBearer_scheme_and_policy_authorize_hub_connections_and_its_claims_decide_the_rooms()
    {
        using RSA signing = RSA.Create(2048);
        string keyFile = Path.Combine(Path.GetTempPath(), $"switchboard-test-{Guid.NewGuid():N}.pem");
        await File.WriteAllTextAsync(keyFile, signing.ExportSubjectPublicKeyInfoPem());
        try
        {
            WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var publicKey = RSA.Create();
            publicKey.ImportFromPem(await File.ReadAllTextAsync(keyFile));
            builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer(o =>
            {
                o.MapInboundClaims = false;
                o.TokenValidationParameters = new TokenValidationParameters
                {
                    IssuerSigningKey = new RsaSecurityKey(publicKey),
                    ValidIssuer = "shop",
                    ValidAudience = "switchboard",
                    ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
                };
                // Browsers cannot set headers on a WebSocket request: the app reads the token from the query as well.
                o.Events = new JwtBearerEvents { OnMessageReceived = c => { c.Token ??= c.Request.Query["access_token"]; return Task.CompletedTask; } };
            });
            builder.Services.AddAuthorization();
            builder.Services.AddSwitchboard(o => o.Store = "memory");
            await using WebApplication app = builder.Build();
            app.UseAuthentication();
            app.UseAuthorization();
            app.MapSwitchboardHub("/hub").RequireAuthorization();
            await app.StartAsync();
            var ws = new Uri(SwitchboardServer.GetAddresses(app)[0].Replace("http://", "ws://", StringComparison.Ordinal) + "/hub");

            string Token(Dictionary<string, object> claims, SecurityKey? key = null) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = "shop",
                Audience = "switchboard",
                Claims = claims,
                Expires = DateTime.UtcNow.AddHours(1),
                SigningCredentials = new SigningCredentials(key ?? new RsaSecurityKey(signing), SecurityAlgorithms.RsaSha256),
            });

            Assert.StartsWith("HTTP/1.1 401", await StatusLineAsync(ws, "/hub")); // the app's policy: no anonymous connection
            using RSA stranger = RSA.Create(2048);
            Assert.StartsWith("HTTP/1.1 401", await StatusLineAsync(ws, "/hub?access_token=" + Token(new() { ["sub"] = "mallory" }, new RsaSecurityKey(stranger))));

            string alice = Token(new() { ["sub"] = "alice", ["name"] = "Alice", ["join"] = new[] { "team-*" }, ["publish"] = new[] { "team-a" } });
            await using var a = await HubClient.ConnectAsync(ws, "ignored", query: "?access_token=" + alice);
            Assert.Equal(("alice", "Alice"), (a.Welcome.GetProperty("user").GetString(), a.Welcome.GetProperty("name").GetString()));
            Assert.Equal("joined", HubClient.Type(await a.ReplyAsync(a.Send(new { type = "join", room = "team-a" }))));
            Assert.Equal("joined", HubClient.Type(await a.ReplyAsync(a.Send(new { type = "join", room = "team-b" }))));
            Assert.Equal("forbidden", (await a.ReplyAsync(a.Send(new { type = "join", room = "lobby" }))).GetProperty("code").GetString());
            Assert.Equal("ack", HubClient.Type(await a.ReplyAsync(a.Send(new { type = "publish", room = "team-a", text = "hi", id = "1" }))));
            Assert.Equal("forbidden", (await a.ReplyAsync(a.Send(new { type = "publish", room = "team-b", text = "hi", id = "2" }))).GetProperty("code").GetString());
            Assert.Equal("invalid_token", (await a.ReplyAsync(a.Send(new { type = "refresh", token = alice }))).GetProperty("code").GetString()); // the app's scheme: reconnect instead

            // No join or publish claim (an empty array arrives as none): no room at all, not every room.
            await using var b = await HubClient.ConnectAsync(ws, "ignored", query: "?access_token=" + Token(new() { ["sub"] = "bob", ["join"] = Array.Empty<string>() }));
            Assert.Equal("forbidden", (await b.ReplyAsync(b.Send(new { type = "join", room = "team-a" }))).GetProperty("code").GetString());
            Assert.Equal("forbidden", (await b.ReplyAsync(b.Send(new { type = "publish", room = "team-a", text = "hi", id = "1" }))).GetProperty("code").GetString());
            await app.StopAsync();
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    private static async Task<string> StatusLineAsync(Uri ws, string pathAndQuery)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(ws.Host, ws.Port);
        NetworkStream s = tcp.GetStream();
        await s.WriteAsync(Encoding.ASCII.GetBytes($"GET {pathAndQuery} HTTP/1.1\r\nHost: {ws.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
        using var reader = new StreamReader(s, Encoding.ASCII);
        return await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(15)) ?? "";
    }
}
