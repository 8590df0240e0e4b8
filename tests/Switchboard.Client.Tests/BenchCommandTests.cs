using System.Text.Json;

namespace Switchboard.Client.Tests;

/// <summary>`switchboard bench` runs its scenarios against a real server and reports JSON (numbers are not asserted: benchmarks are not tests).</summary>
public class BenchCommandTests
{
    private static async Task<JsonElement> BenchAsync(params string[] args)
    {
        await using var bench = PeerProcess.Start("dotnet", AppContext.BaseDirectory, [ServerProcess.SwitchboardDll, "bench", .. args, "--json"]);
        using JsonDocument doc = JsonDocument.Parse(await bench.ReadLineAsync("{"));
        Assert.Equal(0, await bench.WaitForExitAsync());
        return doc.RootElement.Clone();
    }

    [Fact]
    public async Task Echo_broadcast_and_connections_scenarios_measure_something_and_lose_nothing()
    {
        var (server, port) = await ServerProcess.StartAsync(0, "--store", "memory");
        await using var _ = server;
        string pid = server.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);

        JsonElement echo = await BenchAsync("echo", $"ws://127.0.0.1:{port}/echo", "--clients", "4", "--duration", "1", "--warmup-seconds", "0.5", "--server-pid", pid);
        Assert.True(echo.GetProperty("received").GetInt64() > 0);
        Assert.True(echo.GetProperty("p99Us").GetInt64() >= echo.GetProperty("p50Us").GetInt64());
        Assert.True(echo.GetProperty("serverCpuSeconds").GetDouble() > 0);

        JsonElement seed = await BenchAsync("broadcast", $"ws://127.0.0.1:{port}/ws", "--clients", "10", "--rate", "100", "--duration", "1", "--warmup-seconds", "0.5");
        Assert.True(seed.GetProperty("sent").GetInt64() > 0);
        Assert.Equal(seed.GetProperty("sent").GetInt64() * 10, seed.GetProperty("received").GetInt64());
        Assert.Equal(0, seed.GetProperty("lost").GetInt64());

        JsonElement hub = await BenchAsync("broadcast", $"ws://127.0.0.1:{port}/hub", "--protocol", "hub", "--room", "bench-test", "--clients", "5", "--window", "4", "--duration", "1", "--warmup-seconds", "0.5");
        Assert.Equal(0, hub.GetProperty("lost").GetInt64());
        Assert.True(hub.GetProperty("received").GetInt64() > 0);

        JsonElement idle = await BenchAsync("connections", $"ws://127.0.0.1:{port}/echo", "--clients", "200", "--duration", "1", "--server-pid", pid);
        Assert.Equal(200, idle.GetProperty("received").GetInt64());
        Assert.True(idle.GetProperty("rssPerConnectionKiB").ValueKind == JsonValueKind.Number);
    }
}
