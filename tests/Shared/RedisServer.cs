using System.Diagnostics;
using System.Net.Sockets;

namespace Switchboard.Tests.Shared;

/// <summary>
/// A throwaway Redis server (Debian's redis-server, which ./test.sh installs) on a free loopback port, in a temp
/// directory, with no persistence. It can be stopped and started again on the same port (a Redis restart).
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("switchboard-redis-").FullName;

    private RedisServer(int port) => Port = port;

    public int Port { get; }

    /// <summary>The StackExchange.Redis configuration string for it.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync()
    {
        if (!File.Exists("/usr/bin/redis-server"))
        {
            throw new InvalidOperationException("Redis is not installed (Debian package redis-server); ./test.sh installs it.");
        }

        var server = new RedisServer(ServerProcess.FreePort());
        await server.StartAgainAsync();
        return server;
    }

    /// <summary>Starts the server (again, after <see cref="StopAsync"/>) and waits until it answers PING.</summary>
    public async Task StartAgainAsync()
    {
        await Tool.RunAsync("/usr/bin/redis-server", "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "yes", "--pidfile", Path.Combine(_dir, "redis.pid"), "--dir", _dir);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await PingAsync())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"redis-server did not answer on port {Port}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Stops the server (SIGTERM to the pid it wrote) and waits until the port is closed.</summary>
    public async Task StopAsync()
    {
        string pidFile = Path.Combine(_dir, "redis.pid");
        if (!File.Exists(pidFile))
        {
            return;
        }

        int pid = int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            using Process p = Process.GetProcessById(pid);
            p.Kill();
            await p.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);
        }
        catch (ArgumentException)
        {
            // already gone
        }

        File.Delete(pidFile);
    }

    private async Task<bool> PingAsync()
    {
        try
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync("127.0.0.1", Port);
            NetworkStream s = tcp.GetStream();
            await s.WriteAsync("PING\r\n"u8.ToArray());
            var buffer = new byte[16];
            int n = await s.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(2));
            return n > 0 && buffer[0] == (byte)'+';
        }
        catch (Exception ex) when (ex is SocketException or IOException or TimeoutException)
        {
            return false;
        }
    }


    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
