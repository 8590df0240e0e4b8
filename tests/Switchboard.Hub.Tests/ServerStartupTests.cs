using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
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
        foreach (string name in new[] { "switchboard_connections ", "switchboard_rooms{room_kind=\"dynamic\"} ", "switchboard_hub_messages_in_total{room_kind=\"default\"} ",
                     "switchboard_publishes_in_flight ", "switchboard_connections_refused_total ", "switchboard_store_append_seconds_count ", "switchboard_bytes_sent_total " })
        {
            Assert.Contains("\n" + name, "\n" + metrics);
        }
    }

    [Fact]
    public async Task Serve_watches_no_files_so_the_writes_to_a_database_in_its_working_directory_wake_no_thread()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // the watch is looked for among the process's descriptors
        }

        // The defaults: the database is "switchboard.db" in the working directory, which is also the host's content root.
        string dir = TempDir();
        var (server, port) = await ServerProcess.StartInAsync(dir, new Dictionary<string, string> { ["Switchboard__Hub__PublishRateLimit"] = "0" });
        await using var _ = server;
        await using (var client = await HubClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}"), "writer"))
        {
            for (int i = 0; i < 20; i++)
            {
                Assert.Equal("ack", HubClient.Type(await client.ReplyAsync(client.Send(new { type = "publish", room = "lobby", text = $"m{i}", id = $"w{i}" }))));
            }
        }

        Assert.True(File.Exists(Path.Combine(dir, "switchboard.db")));
        string[] watches = [.. Directory.GetFiles($"/proc/{server.Pid}/fd").Where(fd => new FileInfo(fd).LinkTarget == "anon_inode:inotify")];
        Assert.Empty(watches); // a configuration file watch covers the whole content root, the database's log included
    }

    [Theory]
    [InlineData("text", false)]
    [InlineData("json", true)]
    public async Task Logging_scopes_exist_only_in_the_format_that_prints_them(string format, bool scopes)
    {
        // Kestrel opens a scope per connection; with a scope-capable provider every connection keeps it alive.
        WebApplication app = SwitchboardServer.Build(new SwitchboardServerOptions { Urls = "http://127.0.0.1:0", Store = "memory", LogFormat = format });
        await using var _ = app;
        ILoggerProvider[] providers = [.. app.Services.GetServices<ILoggerProvider>()];
        Assert.NotEmpty(providers);
        Assert.Equal(scopes, providers.Any(p => p is ISupportExternalScope)); // no scope-capable provider: no scope stack
    }

    [Fact]
    public async Task The_store_is_opened_when_the_host_starts_not_when_the_app_is_built_or_its_services_resolved()
    {
        int opened = 0;
        WebApplication app = SwitchboardServer.Build(new SwitchboardServerOptions
        {
            Urls = "http://127.0.0.1:0",
            StoreFactory = () =>
            {
                Interlocked.Increment(ref opened);
                return new InMemoryMessageStore();
            },
        });
        await using var _ = app;
        Assert.NotNull(app.Services.GetRequiredService<ISwitchboardHubContext>());
        Assert.Equal(0, opened);
        Assert.Throws<InvalidOperationException>(() => SwitchboardServer.GetHub(app)); // no hub before its store is open

        await app.StartAsync();
        Assert.Equal(1, opened);
        Assert.Same(SwitchboardServer.GetHub(app), SwitchboardServer.GetHub(app));
        await app.StopAsync();
    }

    [Fact]
    public async Task An_unreachable_store_fails_the_start_naming_it_before_anything_listens()
    {
        int port = FreePort();
        WebApplication app = SwitchboardServer.Build(new SwitchboardServerOptions
        {
            Urls = $"http://127.0.0.1:{port}",
            Store = "postgres",
            Postgres = $"Host=127.0.0.1;Port={FreePort()};Timeout=2;Username=nobody",
        });
        await using var _ = app;
        ServerConfigurationException error = await Assert.ThrowsAsync<ServerConfigurationException>(() => app.StartAsync());
        Assert.StartsWith("Switchboard:Postgres: cannot connect", error.Message, StringComparison.Ordinal);
        using var client = new System.Net.Sockets.TcpClient();
        await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(() => client.ConnectAsync("127.0.0.1", port)); // nothing listens
    }

    private static int FreePort()
    {
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        return ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
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
