using System.Globalization;
using System.Net;
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
        AssertGeneratorLoad(doc.RootElement, bench.Stderr);
        return doc.RootElement.Clone();
    }

    // Every result says how busy the generator itself was, over the CPUs it may run on (this process's, inherited),
    // and the warning on standard error appears exactly when it was busy enough to delay what it measures.
    private static void AssertGeneratorLoad(JsonElement result, string stderr)
    {
        Assert.Equal(Environment.ProcessorCount, result.GetProperty("generatorCpus").GetInt32());
        double cpu = result.GetProperty("generatorCpuSeconds").GetDouble(), share = result.GetProperty("generatorCpuShare").GetDouble();
        Assert.True(cpu > 0, $"generator CPU {cpu}");
        Assert.InRange(share, double.Epsilon, 1.05);
        Assert.Equal(share >= 0.9, stderr.Contains("warning: the load generator used", StringComparison.Ordinal));
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

        // Spread over rooms: 8 clients in 4 rooms, each message reaches the 2 members of its room.
        JsonElement spread = await BenchAsync("broadcast", $"ws://127.0.0.1:{port}/hub", "--protocol", "hub", "--room", "spread", "--rooms", "4", "--clients", "8", "--senders", "8", "--window", "2", "--duration", "1", "--warmup-seconds", "0.5");
        Assert.True(spread.GetProperty("sent").GetInt64() > 0);
        Assert.Equal(spread.GetProperty("sent").GetInt64() * 2, spread.GetProperty("expected").GetInt64());
        Assert.Equal(0, spread.GetProperty("lost").GetInt64());

        JsonElement idle = await BenchAsync("connections", $"ws://127.0.0.1:{port}/echo", "--clients", "200", "--duration", "1", "--server-pid", pid);
        Assert.Equal(200, idle.GetProperty("received").GetInt64());
        Assert.True(idle.GetProperty("rssPerConnectionKiB").ValueKind == JsonValueKind.Number);
    }

    [Fact]
    public async Task Connections_are_spread_over_the_source_addresses_asked_for()
    {
        var (server, port) = await ServerProcess.StartAsync(0, "--store", "memory");
        await using var _ = server;
        await using var bench = PeerProcess.Start("dotnet", AppContext.BaseDirectory,
            [ServerProcess.SwitchboardDll, "bench", "connections", $"ws://127.0.0.1:{port}/echo", "--clients", "90", "--warmup", "0", "--source-addresses", "3", "--duration", "2", "--json"]);

        // While the load generator holds its connections open, the server's side of each one shows where it came from.
        Dictionary<IPAddress, int> peers = [];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (peers.Values.Sum() < 90)
        {
            await Task.Delay(50, deadline.Token); // polling the kernel's table: there is no event to wait for
            peers = EstablishedPeers(server.Pid);
        }

        Assert.Equal(["127.0.0.1", "127.0.0.2", "127.0.0.3"], peers.Keys.Select(a => a.ToString()).Order());
        Assert.All(peers.Values, count => Assert.Equal(30, count));
        using JsonDocument doc = JsonDocument.Parse(await bench.ReadLineAsync("{"));
        Assert.Equal(90, doc.RootElement.GetProperty("received").GetInt64());
        Assert.Equal(0, await bench.WaitForExitAsync());
    }

    [Theory]
    [InlineData("ws://localhost:8000/echo", "the server must be at an IPv4 loopback address")]
    [InlineData("ws://127.0.0.1:8000/echo", "--source-addresses must be between 0 and 254")]
    public async Task Source_addresses_that_cannot_work_are_refused_with_the_reason(string url, string reason)
    {
        string count = url.Contains("localhost", StringComparison.Ordinal) ? "2" : "255";
        await using var bench = PeerProcess.Start("dotnet", AppContext.BaseDirectory, [ServerProcess.SwitchboardDll, "bench", "connections", url, "--source-addresses", count]);
        await bench.WaitForStderrAsync(reason);
        Assert.NotEqual(0, await bench.WaitForExitAsync());
    }

    /// <summary>
    /// Remote addresses of the process's established IPv4 connections, from /proc/net/tcp (matched by the socket inodes
    /// in /proc/PID/fd, so other processes' sockets never count, whatever ports they use).
    /// </summary>
    private static Dictionary<IPAddress, int> EstablishedPeers(int pid)
    {
        var inodes = new HashSet<string>();
        foreach (string fd in Directory.EnumerateFiles($"/proc/{pid}/fd"))
        {
            string? target = new FileInfo(fd).LinkTarget; // socket:[12345]
            if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal))
            {
                inodes.Add(target[8..^1]);
            }
        }

        var peers = new Dictionary<IPAddress, int>();
        foreach (string line in File.ReadLines("/proc/net/tcp").Skip(1))
        {
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries); // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
            if (f[3] != "01" || !inodes.Contains(f[9]))
            {
                continue;
            }

            uint address = uint.Parse(f[2][..8], NumberStyles.HexNumber, CultureInfo.InvariantCulture); // network order, printed as a host-order number
            var peer = new IPAddress(BitConverter.GetBytes(address));
            peers[peer] = peers.GetValueOrDefault(peer) + 1;
        }

        return peers;
    }
}
