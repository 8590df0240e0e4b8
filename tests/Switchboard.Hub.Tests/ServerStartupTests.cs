using Switchboard.Server;

namespace Switchboard.Hub.Tests;

/// <summary>The first minute with `switchboard serve`: what it says at start-up, and how it refuses what it cannot do.</summary>
public class ServerStartupTests
{
    private static string TempDir() => Directory.CreateTempSubdirectory("switchboard-start-").FullName;

    [Fact]
    public async Task Start_up_names_every_endpoint_the_store_authentication_and_compression_and_metrics_are_all_there_at_once()
    {
        string db = Path.Combine(TempDir(), "start.db");
        var (server, port) = await ServerProcess.StartAsync(0, "--db", db);
        await using var _ = server;
        string endpoints = await server.ReadLineAsync("info: Switchboard.Server.Startup[0] Chat UI");
        Assert.Contains($"http://127.0.0.1:{port}/ ", endpoints);
        Assert.Contains($"ws://127.0.0.1:{port}/hub", endpoints);
        Assert.Contains($"ws://127.0.0.1:{port}/ws", endpoints);
        Assert.Contains($"ws://127.0.0.1:{port}/echo", endpoints);
        Assert.Contains($"http://127.0.0.1:{port}/metrics", endpoints);
        string settings = await server.ReadLineAsync("info: Switchboard.Server.Startup[0] Store:");
        Assert.Contains($"sqlite {db}", settings);
        Assert.Contains("authentication: off", settings);
        Assert.Contains("compression: permessage-deflate", settings);

        // Before any WebSocket connection: every instrument is listed.
        using var http = new HttpClient();
        string metrics = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        foreach (string name in new[] { "switchboard_connections ", "switchboard_rooms ", "switchboard_hub_messages_in_total ", "switchboard_publishes_in_flight ",
                     "switchboard_connections_refused_total ", "switchboard_store_append_seconds_count ", "switchboard_bytes_sent_total " })
        {
            Assert.Contains("\n" + name, "\n" + metrics);
        }
    }

    [Fact]
    public async Task A_port_in_use_is_one_clear_line_without_a_stack_trace()
    {
        var (first, port) = await ServerProcess.StartAsync(0, "--store", "memory");
        await using var _ = first;
        await using PeerProcess second = PeerProcess.Start("dotnet", AppContext.BaseDirectory, ServerProcess.SwitchboardDll, "serve", "--urls", $"http://127.0.0.1:{port}", "--store", "memory");
        Assert.Equal(1, await second.WaitForExitAsync());
        string[] errors = second.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string line = Assert.Single(errors);
        Assert.Contains($"http://127.0.0.1:{port}", line);
        Assert.Contains("already in use", line);
        Assert.DoesNotContain(StdoutLines(second), l => l.Contains(" at ", StringComparison.Ordinal) || l.Contains("Exception", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("""{"Switchboard":{"Auth":{"Enabld":true}}}""", "Switchboard:Auth:Enabld")]
    [InlineData("""{"Switchboard":{"Hub":{"RoomRetention":{"x":{"MaxCnt":3}}}}}""", "Switchboard:Hub:RoomRetention:x:MaxCnt")]
    [InlineData("""{"Switchboard":{"Urlz":"http://127.0.0.1:1"}}""", "Switchboard:Urlz")]
    public void A_misspelled_setting_stops_the_server_naming_it(string json, string key)
    {
        string file = Path.Combine(TempDir(), "settings.json");
        File.WriteAllText(file, json);
        var error = Assert.Throws<ServerConfigurationException>(() => SwitchboardServerOptions.Load(configFile: file));
        Assert.Contains(key + ": not a setting", error.Message);
    }

    [Fact]
    public async Task The_serve_command_refuses_a_misspelled_setting_from_the_environment()
    {
        await using PeerProcess server = PeerProcess.Start("dotnet", AppContext.BaseDirectory, new Dictionary<string, string> { ["Switchboard__Auth__Enabld"] = "true" },
            ServerProcess.SwitchboardDll, "serve", "--urls", $"http://127.0.0.1:{ServerProcess.FreePort()}", "--store", "memory");
        Assert.Equal(2, await server.WaitForExitAsync());
        Assert.Contains("Switchboard:Auth:Enabld: not a setting", server.Stderr);
    }

    private static List<string> StdoutLines(PeerProcess process)
    {
        var lines = new List<string>();
        while (process.TryReadLine(out string? line))
        {
            lines.Add(line!);
        }

        return lines;
    }
}
