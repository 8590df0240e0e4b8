using System.Collections.Concurrent;
using System.Text.Json;

namespace Switchboard.Hub.Tests;

/// <summary>The server as a real process: crash safety, graceful shutdown, configuration.</summary>
public class ServerProcessTests
{
    private static string TempDir() => Directory.CreateTempSubdirectory("switchboard-proc-").FullName;

    [Fact]
    public async Task Kill_9_during_a_publish_burst_loses_no_acknowledged_message_and_duplicates_none()
    {
        string db = Path.Combine(TempDir(), "crash.db");
        var (server, port) = await ServerProcess.StartAsync(0, "--db", db);
        var ws = new Uri($"ws://127.0.0.1:{port}");
        const string room = "crash";
        var acked = new ConcurrentDictionary<string, long>();
        var publishers = new List<HubClient>();
        for (int p = 0; p < 4; p++)
        {
            publishers.Add(await HubClient.ConnectAsync(ws, "pub" + p));
        }

        using var stop = new CancellationTokenSource();
        var enoughAcked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task[] loops = [.. publishers.Select((c, p) => Task.Run(async () =>
        {
            // Keep up to 50 publishes in flight per connection, as a real client pipelining would.
            int sent = 0, done = 0;
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    while (sent - done < 50)
                    {
                        c.Send(new { type = "publish", room, text = $"message {sent}", id = $"p{p}-{sent}" });
                        sent++;
                    }

                    JsonElement e = await c.NextAsync();
                    if (HubClient.Type(e) == "ack")
                    {
                        acked[e.GetProperty("id").GetString()!] = e.GetProperty("offset").GetInt64();
                        done++;
                        if (acked.Count >= 3000)
                        {
                            enoughAcked.TrySetResult();
                        }
                    }
                }
            }
            catch (Exception)
            {
                // the server died under us: expected
            }
        }))];

        await enoughAcked.Task.WaitAsync(TimeSpan.FromSeconds(60)); // kill in the middle of the burst

        server.KillHard();
        await server.WaitForExitAsync();
        await stop.CancelAsync();
        await Task.WhenAll(loops);
        Dictionary<string, long> confirmed = new(acked);
        await server.DisposeAsync();

        var (restarted, port2) = await ServerProcess.StartAsync(0, "--db", db);
        await using var _ = restarted;
        await using var reader = await HubClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port2}"), "auditor");
        JsonElement joined = await reader.ReplyAsync(reader.Send(new { type = "join", room, since = 0 }));
        long head = joined.GetProperty("offset").GetInt64();
        Assert.True(head >= confirmed.Count);
        var stored = new Dictionary<string, long>();
        long expected = 1;
        while (expected <= head)
        {
            JsonElement m = await reader.ExpectAsync("message");
            Assert.Equal(expected++, m.GetProperty("offset").GetInt64()); // dense: nothing lost in the middle
            Assert.True(stored.TryAdd(m.GetProperty("id").GetString()!, m.GetProperty("offset").GetInt64()), "a message was stored twice");
        }

        foreach (var (id, offset) in confirmed)
        {
            Assert.True(stored.TryGetValue(id, out long at), $"acknowledged message {id} is missing after the crash");
            Assert.Equal(offset, at);
        }
    }

    [Fact]
    public async Task History_survives_a_restart()
    {
        string db = Path.Combine(TempDir(), "restart.db");
        var (first, port) = await ServerProcess.StartAsync(0, "--db", db);
        string epoch;
        await using (first)
        {
            await using var c = await HubClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}"), "writer");
            epoch = (await c.ReplyAsync(c.Send(new { type = "join", room = "kept" }))).GetProperty("epoch").GetString()!;
            for (int i = 1; i <= 5; i++)
            {
                await c.PublishAsync("kept", "message " + i, "id" + i);
            }

            first.Terminate();
            Assert.Equal(0, await first.WaitForExitAsync());
        }

        var (second, port2) = await ServerProcess.StartAsync(0, "--db", db);
        await using var _ = second;
        await using var r = await HubClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port2}"), "writer");
        JsonElement history = await r.ReplyAsync(r.Send(new { type = "history", room = "kept", limit = 10 }));
        Assert.Equal(epoch, history.GetProperty("epoch").GetString());
        Assert.Equal(Enumerable.Range(1, 5).Select(i => "message " + i), history.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("text").GetString()));
        JsonElement ack = await r.ReplyAsync(r.Send(new { type = "publish", room = "kept", text = "message 1", id = "id1" }));
        Assert.True(ack.GetProperty("duplicate").GetBoolean()); // the same user's retry: the idempotency record survived too
        Assert.Equal(1, ack.GetProperty("offset").GetInt64());
    }

    [Fact]
    public async Task Sigterm_closes_every_connection_with_1001_and_exits_0()
    {
        var (server, port) = await ServerProcess.StartAsync(0, "--store", "memory");
        await using var _ = server;
        var ws = new Uri($"ws://127.0.0.1:{port}");
        await using var a = await HubClient.ConnectAsync(ws, "a");
        await using var b = await HubClient.ConnectAsync(ws, "", path: "/ws");
        await a.ReplyAsync(a.Send(new { type = "join", room = "general" }));
        server.Terminate();
        Assert.Equal(1001, (await a.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30))).Code);
        Assert.Equal(1001, (await b.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30))).Code);
        Assert.Equal(0, await server.WaitForExitAsync());
    }

    [Fact]
    public async Task Settings_come_from_appsettings_then_environment_then_flags()
    {
        string dir = TempDir();
        int p1 = ServerProcess.FreePort(), p2 = ServerProcess.FreePort();
        string config = Path.Combine(dir, "settings.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new { Switchboard = new { Urls = $"http://127.0.0.1:{p1}", Store = "memory", MaxMessageSize = 100 } }));

        // appsettings alone: its Urls and its 100-byte message limit apply.
        await using (var s1 = PeerProcess.Start("dotnet", dir, (IReadOnlyDictionary<string, string>?)null, ServerProcess.SwitchboardDll, "serve", "--config", config))
        {
            await s1.ReadLineAsync("info: Microsoft.Hosting.Lifetime[0] Application started");
            await using var c = await HubClient.ConnectAsync(new Uri($"ws://127.0.0.1:{p1}"), "x");
            c.SendRaw("{\"type\":\"ping\",\"pad\":\"" + new string('x', 200) + "\"}");
            Assert.Equal(1009, (await c.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30))).Code);
        }

        // The environment overrides the file; a flag overrides both.
        var env = new Dictionary<string, string> { ["SWITCHBOARD_MAXMESSAGESIZE"] = "100000", ["SWITCHBOARD_URLS"] = "http://127.0.0.1:1" };
        await using (var s2 = PeerProcess.Start("dotnet", dir, env, ServerProcess.SwitchboardDll, "serve", "--config", config, "--urls", $"http://127.0.0.1:{p2}"))
        {
            await s2.ReadLineAsync("info: Microsoft.Hosting.Lifetime[0] Application started");
            await using var c = await HubClient.ConnectAsync(new Uri($"ws://127.0.0.1:{p2}"), "x");
            string r = c.Send(new { type = "ping", pad = new string('x', 200) });
            Assert.Equal("pong", HubClient.Type(await c.ReplyAsync(r)));
        }
    }

    [Fact]
    public async Task Logs_can_be_structured_json()
    {
        int port = ServerProcess.FreePort();
        await using var s = PeerProcess.Start("dotnet", TempDir(), (IReadOnlyDictionary<string, string>?)null, ServerProcess.SwitchboardDll, "serve",
            "--store", "memory", "--log-format", "json", "--urls", $"http://127.0.0.1:{port}");
        using JsonDocument line = JsonDocument.Parse(await s.ReadLineAsync("{"));
        Assert.Equal("Microsoft.Hosting.Lifetime", line.RootElement.GetProperty("Category").GetString());
        Assert.Equal("Information", line.RootElement.GetProperty("LogLevel").GetString());
        Assert.Contains($"127.0.0.1:{port}", line.RootElement.GetProperty("Message").GetString());
    }

    [Theory]
    [InlineData("SWITCHBOARD_MAXMESSAGESIZE", "lots", "MaxMessageSize")]
    [InlineData("SWITCHBOARD_STORE", "mongo", "Switchboard:Store")]
    [InlineData("SWITCHBOARD_HANDSHAKETIMEOUT", "-00:00:01", "Switchboard:HandshakeTimeout")]
    public async Task Invalid_settings_stop_start_up_with_a_message_naming_them(string variable, string value, string named)
    {
        var env = new Dictionary<string, string> { [variable] = value };
        await using var s = PeerProcess.Start("dotnet", TempDir(), env, ServerProcess.SwitchboardDll, "serve", "--urls", $"http://127.0.0.1:{ServerProcess.FreePort()}");
        Assert.Equal(2, await s.WaitForExitAsync());
        Assert.Contains(named, s.Stderr);
    }
}
