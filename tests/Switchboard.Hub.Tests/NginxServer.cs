using System.Diagnostics;

namespace Switchboard.Hub.Tests;

/// <summary>
/// Debian's nginx as a WebSocket load balancer in front of Switchboard nodes (round robin, no stickiness), in a temp
/// directory on a free loopback port. The configuration is the one docs/deployment.md shows.
/// </summary>
public sealed class NginxServer : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("switchboard-nginx-").FullName;

    private NginxServer(int port) => Port = port;

    public int Port { get; }

    public Uri Ws => new($"ws://127.0.0.1:{Port}");

    public Uri Http => new($"http://127.0.0.1:{Port}");

    /// <summary>The configuration for a balancer on <paramref name="port"/> over <paramref name="nodes"/> (docs/deployment.md).</summary>
    public static string Config(int port, IEnumerable<int> nodes, string dir) => $$"""
        {{(Environment.UserName == "root" ? "user root;" : "")}}
        worker_processes 1;
        pid {{dir}}/nginx.pid;
        error_log {{dir}}/error.log;
        events {
            worker_connections 4096;
        }
        http {
            access_log off;
            map $http_upgrade $connection_upgrade {
                default upgrade;
                ''      close;
            }
            upstream switchboard {
        {{string.Join("\n", nodes.Select(p => $"        server 127.0.0.1:{p};"))}}
            }
            server {
                listen 127.0.0.1:{{port}};
                location / {
                    proxy_pass http://switchboard;
                    proxy_http_version 1.1;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection $connection_upgrade;
                    proxy_set_header Host $host;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_read_timeout 3600s;
                    proxy_send_timeout 3600s;
                }
            }
        }
        """;

    public static async Task<NginxServer> StartAsync(IEnumerable<int> nodes)
    {
        if (!File.Exists("/usr/sbin/nginx"))
        {
            throw new InvalidOperationException("nginx is not installed (Debian package nginx); ./test.sh installs it.");
        }

        var server = new NginxServer(ServerProcess.FreePort());
        string config = Path.Combine(server._dir, "nginx.conf");
        await File.WriteAllTextAsync(config, Config(server.Port, nodes, server._dir));
        using Process p = Process.Start(new ProcessStartInfo("/usr/sbin/nginx", ["-c", config, "-p", server._dir, "-g", "daemon on;"]) { RedirectStandardError = true })!;
        string error = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException("nginx did not start: " + error);
        }

        return server;
    }

    public async ValueTask DisposeAsync()
    {
        string pidFile = Path.Combine(_dir, "nginx.pid");
        if (File.Exists(pidFile))
        {
            int pid = int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            try
            {
                using Process master = Process.GetProcessById(pid);
                master.Kill(entireProcessTree: true);
                await master.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);
            }
            catch (ArgumentException)
            {
            }
        }

        Directory.Delete(_dir, recursive: true);
    }
}
