using System.Text.Json;

namespace Switchboard.Client.Tests;

/// <summary>`switchboard send` and `switchboard listen` as processes against a real server.</summary>
public class CliTests
{
    private static Task<Uri> ServerAsync() => SwitchboardClientTests.s_server.Value;

    private static PeerProcess Cli(params string[] args) => PeerProcess.Start("dotnet", AppContext.BaseDirectory, [ServerProcess.SwitchboardDll, .. args]);

    [Fact]
    public async Task Send_and_listen_round_trip_as_json_lines()
    {
        Uri server = await ServerAsync();
        string room = "cli-" + Guid.NewGuid().ToString("N")[..10];
        await using var listen = Cli("listen", server.ToString(), "--room", room, "--since", "0", "--count", "2", "--name", "listener");

        await using (var send1 = Cli("send", server.ToString(), "--room", room, "--name", "Ann", "first message"))
        {
            using JsonDocument ack = JsonDocument.Parse(await send1.ReadLineAsync("{"));
            Assert.Equal((room, 1L), (ack.RootElement.GetProperty("room").GetString(), ack.RootElement.GetProperty("offset").GetInt64()));
            Assert.Matches("^[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$", ack.RootElement.GetProperty("id").GetString()); // made by the client: sorts by time
            Assert.Equal(0, await send1.WaitForExitAsync());
        }

        await using (var send2 = Cli("send", server.ToString(), "--room", room, "--name", "Ann", "--id", "m2", "second \"quoted\" κόσμε"))
        {
            Assert.Equal(0, await send2.WaitForExitAsync());
        }

        using JsonDocument m1 = JsonDocument.Parse(await listen.ReadLineAsync("{"));
        using JsonDocument m2 = JsonDocument.Parse(await listen.ReadLineAsync("{"));
        Assert.Equal(("first message", 1L, "Ann"), (m1.RootElement.GetProperty("text").GetString(), m1.RootElement.GetProperty("offset").GetInt64(), m1.RootElement.GetProperty("name").GetString()));
        Assert.Equal(("second \"quoted\" κόσμε", "m2"), (m2.RootElement.GetProperty("text").GetString(), m2.RootElement.GetProperty("id").GetString()));
        Assert.Equal(0, await listen.WaitForExitAsync());
    }

    [Fact]
    public async Task Failures_are_one_line_on_stderr_with_a_non_zero_exit()
    {
        Uri server = await ServerAsync();
        await using (var unreachable = Cli("send", $"ws://127.0.0.1:{ServerProcess.FreePort()}", "--room", "r", "text"))
        {
            Assert.Equal(1, await unreachable.WaitForExitAsync());
            Assert.Matches("^switchboard: cannot reach ws://127.0.0.1:\\d+/: .+$", unreachable.Stderr.Trim());
        }

        await using (var refused = Cli("send", server.ToString(), "--room", "no spaces allowed", "text"))
        {
            Assert.Equal(1, await refused.WaitForExitAsync());
            Assert.StartsWith("switchboard: refused (invalid_room):", refused.Stderr.Trim());
        }

        await using (var badUrl = Cli("listen", "http://example", "--room", "r"))
        {
            Assert.Equal(2, await badUrl.WaitForExitAsync());
            Assert.Contains("not a ws:// or wss:// address", badUrl.Stderr);
        }
    }

    [Fact]
    public async Task Send_with_an_api_key_publishes_through_the_server_api_without_a_websocket()
    {
        var (server, port) = await ServerProcess.StartAsync(new Dictionary<string, string> { ["Switchboard__Api__Keys__0"] = "cli-key-0123456789" }, 0, "--store", "memory");
        await using var _ = server;
        string url = $"ws://127.0.0.1:{port}";
        await using var listen = Cli("listen", url, "--room", "alerts", "--since", "0", "--count", "1");
        await using (var send = Cli("send", url, "--room", "alerts", "--api-key", "cli-key-0123456789", "--id", "disk-full", "--name", "monitor", "disk full on db-1"))
        {
            using JsonDocument ack = JsonDocument.Parse(await send.ReadLineAsync("{"));
            Assert.Equal(("alerts", 1L, "disk-full", false), (ack.RootElement.GetProperty("room").GetString(), ack.RootElement.GetProperty("offset").GetInt64(),
                ack.RootElement.GetProperty("id").GetString(), ack.RootElement.GetProperty("duplicate").GetBoolean()));
            Assert.Equal(0, await send.WaitForExitAsync());
        }

        using JsonDocument m = JsonDocument.Parse(await listen.ReadLineAsync("{"));
        Assert.Equal(("disk full on db-1", "monitor", "api"), (m.RootElement.GetProperty("text").GetString(), m.RootElement.GetProperty("name").GetString(), m.RootElement.GetProperty("from").GetString()));

        await using var wrongKey = Cli("send", url, "--room", "alerts", "--api-key", "not-the-key", "text");
        Assert.Equal(1, await wrongKey.WaitForExitAsync());
        Assert.Matches("^switchboard: http://127.0.0.1:\\d+/api/rooms/alerts/messages answered 401: .*X-Api-Key", wrongKey.Stderr.Trim());
    }
}

/// <summary>`switchboard chat` driven through its standard input.</summary>
public class ChatCommandTests
{
    [Fact]
    public async Task Chat_is_full_duplex_and_understands_its_commands()
    {
        Uri server = await SwitchboardClientTests.s_server.Value;
        string room = "chat-" + Guid.NewGuid().ToString("N")[..10];
        await using var other = await SwitchboardClient.ConnectAsync(server, new() { Name = "Other" });
        await other.JoinAsync(room);
        await using IAsyncEnumerator<HubMessage> inbox = other.Messages().GetAsyncEnumerator();

        await using var chat = PeerProcess.Start("dotnet", AppContext.BaseDirectory, ServerProcess.SwitchboardDll, "chat", server.ToString(), "--name", "Terminal", "--room", room);
        Assert.Equal($"-- joined #{room} (2 here)", await chat.ReadLineAsync("-- joined"));

        // Incoming messages appear without any input from the user (the input line is still open).
        await other.PublishAsync(room, "ping from other");
        Assert.Matches(@"^\[\d\d:\d\d:\d\d\] Other: ping from other$", await chat.ReadLineAsync("["));

        await chat.WriteLineAsync("hello from the terminal");
        // The terminal shows its own message when the server delivers it back; read that line before
        // asking for history, so the history lines that follow are not confused with it.
        Assert.Matches(@"^\[\d\d:\d\d:\d\d\] Terminal: hello from the terminal$", await chat.ReadLineAsync("["));
        do
        {
            Assert.True(await inbox.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }
        while (inbox.Current.Name == "Other"); // its own message comes back to it too
        Assert.Equal(("Terminal", "hello from the terminal"), (inbox.Current.Name, inbox.Current.Text));

        await chat.WriteLineAsync("/who");
        Assert.Equal($"-- in #{room}: Other, Terminal", await chat.ReadLineAsync("-- in"));
        await chat.WriteLineAsync("/history 5");
        Assert.EndsWith("Other: ping from other", await chat.ReadLineAsync("["));
        Assert.EndsWith("Terminal: hello from the terminal", await chat.ReadLineAsync("["));
        await chat.WriteLineAsync($"/join {room}-2");
        Assert.Equal($"-- joined #{room}-2 (1 here)", await chat.ReadLineAsync("-- joined"));
        await other.PublishAsync(room, "still in the first room");
        Assert.Matches($@"^#{room} \[\d\d:\d\d:\d\d\] Other: still in the first room$", await chat.ReadLineAsync("#"));
        await chat.WriteLineAsync("/quit");
        Assert.Equal(0, await chat.WaitForExitAsync());
    }
}
