using System.Diagnostics;

namespace Switchboard.Tests.Shared;

/// <summary>
/// A throwaway Redis Cluster of three masters on free loopback ports (Debian's redis-server and redis-cli, Redis 7:
/// sharded pub/sub works), created with <c>redis-cli --cluster create</c> and stopped at the end.
/// </summary>
public sealed class RedisCluster : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("switchboard-rcluster-").FullName;
    private readonly int[] _ports = [ServerProcess.FreePort(), ServerProcess.FreePort(), ServerProcess.FreePort()];

    /// <summary>The StackExchange.Redis configuration: every master.</summary>
    public string Configuration => string.Join(",", _ports.Select(p => $"127.0.0.1:{p}"));

    public static async Task<RedisCluster> StartAsync()
    {
        var cluster = new RedisCluster();
        foreach (int port in cluster._ports)
        {
            string dir = Path.Combine(cluster._dir, port.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Directory.CreateDirectory(dir);
            await Tool.RunAsync("/usr/bin/redis-server", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", Path.Combine(dir, "nodes.conf"), "--dir", dir, "--save", "", "--appendonly", "no",
                "--daemonize", "yes", "--pidfile", Path.Combine(dir, "r.pid"));
        }

        foreach (int port in cluster._ports)
        {
            await WaitAsync(() => Tool.RunAsync("/usr/bin/redis-cli", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "ping"));
        }

        await Tool.RunAsync("/usr/bin/redis-cli", ["--cluster", "create", .. cluster._ports.Select(p => $"127.0.0.1:{p}"), "--cluster-replicas", "0", "--cluster-yes"]);
        // Every slot served and agreed on: "cluster_state:ok" on each node.
        foreach (int port in cluster._ports)
        {
            await WaitAsync(async () =>
            {
                string info = await Tool.RunAsync("/usr/bin/redis-cli", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "cluster", "info");
                if (!info.Contains("cluster_state:ok", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException("cluster not ready: " + info);
                }

                return info;
            });
        }

        return cluster;
    }

    private static async Task WaitAsync(Func<Task<string>> attempt)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                await attempt();
                return;
            }
            catch (InvalidOperationException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }


    public async ValueTask DisposeAsync()
    {
        foreach (int port in _ports)
        {
            string pidFile = Path.Combine(_dir, port.ToString(System.Globalization.CultureInfo.InvariantCulture), "r.pid");
            if (File.Exists(pidFile))
            {
                try
                {
                    using Process p = Process.GetProcessById(int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), System.Globalization.CultureInfo.InvariantCulture));
                    p.Kill();
                    await p.WaitForExitAsync();
                }
                catch (ArgumentException)
                {
                }
            }
        }

        Directory.Delete(_dir, recursive: true);
    }
}
