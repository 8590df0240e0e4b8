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
}
