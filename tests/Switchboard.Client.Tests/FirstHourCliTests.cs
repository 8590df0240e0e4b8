using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Switchboard.Server;

namespace Switchboard.Client.Tests;

/// <summary>What a newcomer trips over with the command line and the .NET client, each fixed and checked as a process.</summary>
public class FirstHourCliTests
{
    private static PeerProcess Cli(params string[] args) => PeerProcess.Start("dotnet", AppContext.BaseDirectory, [ServerProcess.SwitchboardDll, .. args]);

    private static readonly Lazy<Task<Uri>> s_authServer = new(async () =>
    {
        WebApplication app = SwitchboardServer.Build(new SwitchboardServerOptions
        {
            Urls = "http://127.0.0.1:0",
            Store = "memory",
            Auth = new AuthOptions { Enabled = true, SigningKey = "first-hour-signing-key-0123456789-abcdef" },
        }, l => l.SetMinimumLevel(LogLevel.Warning));
        await app.StartAsync();
        return new Uri(SwitchboardServer.GetAddresses(app)[0].Replace("http://", "ws://", StringComparison.Ordinal));
    });

    [Theory]
    [InlineData("send")]
    [InlineData("listen")]
    [InlineData("chat")]
    public async Task Pointed_at_something_that_is_not_a_hub_the_commands_say_so_within_seconds_and_suggest_hub(string command)
    {
        Uri server = await SwitchboardClientTests.s_server.Value;
        string echo = new Uri(server, "/echo").ToString();
        string[] args = command switch
        {
            "send" => ["send", echo, "--room", "r", "text"],
            "listen" => ["listen", echo, "--room", "r"],
            _ => ["chat", echo, "--room", "r"],
        };
        await using PeerProcess cli = Cli(args);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(1, await cli.WaitForExitAsync());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(25), $"took {clock.Elapsed}"); // the old behaviour waited 30 s for a welcome
        Assert.Contains("is not a Switchboard hub", cli.Stderr);
        Assert.Contains(new Uri(server, "/hub").ToString(), cli.Stderr);
    }

    [Fact]
    public async Task The_dotnet_client_names_a_server_that_is_not_a_hub()
    {
        Uri server = await SwitchboardClientTests.s_server.Value;
        var error = await Assert.ThrowsAsync<NotAHubException>(() => SwitchboardClient.ConnectAsync(new Uri(server, "/ws"), new() { WelcomeTimeout = TimeSpan.FromSeconds(1) }));
        Assert.Contains("/hub", error.Message);
    }

    [Fact]
    public async Task Piped_connect_waits_for_the_replies_before_closing()
    {
        Uri server = await SwitchboardClientTests.s_server.Value;
        await using PeerProcess connect = Cli("connect", new Uri(server, "/hub?name=Piped").ToString());
        await connect.WriteLineAsync("""{"type":"join","room":"piped","ref":"1"}""");
        await connect.WriteLineAsync("""{"type":"ping","ref":"2"}""");
        connect.CloseInput();
        var lines = new List<string>();
        while (lines.Count < 3)
        {
            lines.Add(await connect.ReadLineAsync("{"));
        }

        Assert.Contains(lines, l => l.Contains("\"welcome\"", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("\"joined\"", StringComparison.Ordinal));
        Assert.Equal(0, await connect.WaitForExitAsync());
    }

    [Fact]
    public async Task Chat_at_the_end_of_piped_input_waits_for_its_acks_and_after_leave_says_it_is_in_no_room()
    {
        Uri server = await SwitchboardClientTests.s_server.Value;
        string room = "piped-chat-" + Guid.NewGuid().ToString("N")[..8];
        await using PeerProcess chat = Cli("chat", server.ToString(), "--name", "Piper", "--room", room);
        Assert.StartsWith($"-- joined #{room}", await chat.ReadLineAsync("-- joined"));
        await chat.WriteLineAsync("stored before the end");
        await chat.WriteLineAsync("/leave");
        await chat.WriteLineAsync("typed after leaving");
        chat.CloseInput();
        Assert.Equal(0, await chat.WaitForExitAsync());
        var output = new List<string>();
        while (chat.TryReadLine(out string? line))
        {
            output.Add(line!);
        }

        Assert.DoesNotContain("not sent to", chat.Stderr + string.Join('\n', output));
        Assert.Contains(output, l => l.StartsWith($"-- left #{room}", StringComparison.Ordinal));
        Assert.Contains(output, l => l.Contains("not in a room, not sent", StringComparison.Ordinal));
        Assert.True(chat.Stderr.Split('\n').Count(l => l.Contains("-- closed", StringComparison.Ordinal)) <= 1, chat.Stderr);

        await using var reader = await SwitchboardClient.ConnectAsync(server, new() { Name = "Reader" });
        var (page, _) = await reader.HistoryAsync(room, null, 10);
        Assert.Equal(["stored before the end"], page.Select(m => m.Text));
    }

    [Fact]
    public async Task Listen_with_a_count_ends_quietly()
    {
        Uri server = await SwitchboardClientTests.s_server.Value;
        string room = "count-" + Guid.NewGuid().ToString("N")[..8];
        await using (var publisher = await SwitchboardClient.ConnectAsync(server, new() { Name = "P" }))
        {
            await publisher.PublishAsync(room, "one");
        }

        await using PeerProcess listen = Cli("listen", server.ToString(), "--room", room, "--since", "0", "--count", "1");
        using JsonDocument m = JsonDocument.Parse(await listen.ReadLineAsync("{"));
        Assert.Equal(0, await listen.WaitForExitAsync());
        Assert.Equal("", listen.Stderr.Trim());
    }

    [Fact]
    public async Task A_refused_token_shows_the_servers_reason_and_tokens_in_urls_are_never_printed()
    {
        Uri server = await s_authServer.Value;
        await using (PeerProcess send = PeerProcess.Start("dotnet", AppContext.BaseDirectory, new Dictionary<string, string> { ["SWITCHBOARD_TOKEN"] = "not.a.jwt" },
            ServerProcess.SwitchboardDll, "send", server.ToString(), "--room", "r", "text"))
        {
            Assert.Equal(1, await send.WaitForExitAsync());
            Assert.Contains("401", send.Stderr);
            Assert.Contains("malformed or invalid", send.Stderr); // the server's error_description
        }

        const string Secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl";
        await using PeerProcess connect = Cli("connect", new Uri(server, "/hub?access_token=" + Secret).ToString());
        connect.CloseInput();
        Assert.Equal(1, await connect.WaitForExitAsync());
        Assert.Contains("access_token=…", connect.Stderr);
        Assert.DoesNotContain(Secret, connect.Stderr);
        Assert.Contains("The token is malformed or invalid", connect.Stderr);
    }
}
