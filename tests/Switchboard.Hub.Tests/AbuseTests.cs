using Xunit.Abstractions;
using System.Text;
using System.Text.Json;

namespace Switchboard.Hub.Tests;

/// <summary>
/// One client trying to exhaust the server, against a real server process with its default settings: what it can make
/// the server hold is bounded, and what it sent is not lost.
/// </summary>
public class AbuseTests(ITestOutputHelper output)
{
    private static string TempDir() => Directory.CreateTempSubdirectory("switchboard-abuse-").FullName;

    /// <summary>Settings for the server process, as environment variables.</summary>
    private static Dictionary<string, string> Env(params (string Key, string Value)[] settings) => settings.ToDictionary(s => s.Key, s => s.Value);

    [Fact]
    public async Task Pipelined_publishes_from_a_client_that_never_reads_hold_the_server_to_a_window_and_are_all_acked()
    {
        var (server, port) = await ServerProcess.StartAsync(Env(("Switchboard__Hub__PublishRateLimit", "0")), 0, "--db", Path.Combine(TempDir(), "flood.db"));
        await using var _ = server;
        using RawHubSocket raw = await RawHubSocket.ConnectAsync(port);
        raw.Socket.ReceiveBufferSize = 4096; // a client that reads nothing: acks back up on the server at once

        string text = new('x', 16_000);
        long before = server.ResidentBytes();
        var sampler = PeakRss.Start(server);
        var (frames, bytes, partial, partialSent) = raw.Flood(
            i => RawHubSocket.TextFrame($"{{\"type\":\"publish\",\"room\":\"flood\",\"text\":\"{text}\",\"id\":\"f{i}\"}}"), TimeSpan.FromSeconds(4));
        long peak = await sampler.StopAsync();

        output.WriteLine($"{frames} frames, {bytes / (1024 * 1024)} MB written, RSS {before / (1024 * 1024)} -> peak {peak / (1024 * 1024)} MB");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // Held back by TCP: the server read only what its publish window and its reply queue allow.
        long growth = peak - before;
        Assert.True(growth < 160L * 1024 * 1024, $"server RSS grew by {growth / (1024 * 1024)} MB while one client wrote {bytes / (1024 * 1024)} MB of publishes");

        // Nothing lost: once the client reads, every publish it wrote whole (and the one it was in the middle of) is acked.
        raw.Socket.ReceiveBufferSize = 1024 * 1024; // reading now: a normal window again
        Task finish = raw.FinishPartialAsync(partial, partialSent);
        int expected = frames + (partial is null ? 0 : 1);
        int acks = await raw.CountUntilAsync("\"type\":\"ack\"", expected, TimeSpan.FromSeconds(90));
        await finish;
        output.WriteLine($"acks read in {clock.Elapsed}");
        Assert.Equal(expected, acks);
    }

    [Fact]
    public async Task History_requests_from_clients_that_never_read_are_paced_and_hold_the_server_to_a_bound()
    {
        var (server, port) = await ServerProcess.StartAsync(0, "--db", Path.Combine(TempDir(), "history.db"));
        await using var _ = server;
        var ws = new Uri($"ws://127.0.0.1:{port}");
        await using (var writer = await HubClient.ConnectAsync(ws, "writer"))
        {
            string text = new('h', 16_000);
            for (int i = 0; i < 300; i += 50)
            {
                await Task.WhenAll(Enumerable.Range(i, 50).Select(k => writer.PublishAsync("archive", text + k)));
            }
        }

        long before = server.ResidentBytes();
        byte[] request = RawHubSocket.TextFrame("""{"type":"history","room":"archive","limit":500}""");
        var sockets = new List<RawHubSocket>();
        for (int i = 0; i < 20; i++)
        {
            RawHubSocket s = await RawHubSocket.ConnectAsync(port);
            s.Socket.ReceiveBufferSize = 4096;
            sockets.Add(s);
        }

        var sampler = PeakRss.Start(server);
        await Task.WhenAll(sockets.Select(s => Task.Run(() => s.Flood(_ => request, TimeSpan.FromSeconds(3)))));
        long peak = await sampler.StopAsync();
        long growth = peak - before;
        output.WriteLine($"RSS {before / (1024 * 1024)} -> peak {peak / (1024 * 1024)} MB");
        // Per connection: one page (1 MiB) over the soft limit (256 KiB), plus the garbage of building it; unpaced, ~650 MB here.
        Assert.True(growth < 240L * 1024 * 1024, $"server RSS grew by {growth / (1024 * 1024)} MB with 20 connections asking for history and reading nothing");

        // The server still serves: a well-behaved client gets its history page at once.
        await using var reader = await HubClient.ConnectAsync(ws, "reader");
        JsonElement page = await reader.ReplyAsync(reader.Send(new { type = "history", room = "archive", limit = 500 }));
        Assert.Equal("history", HubClient.Type(page));
        Assert.True(page.GetProperty("more").GetBoolean()); // 300 x 16 KB do not fit in one 1 MiB page
        foreach (RawHubSocket s in sockets)
        {
            s.Dispose();
        }
    }

    [Fact]
    public async Task Seed_ws_messages_from_a_client_that_never_reads_hold_the_server_to_a_window()
    {
        var (server, port) = await ServerProcess.StartAsync(Env(("Switchboard__Hub__PublishRateLimit", "0")), 0, "--db", Path.Combine(TempDir(), "seed-flood.db"));
        await using var _ = server;
        using RawHubSocket raw = await RawHubSocket.ConnectAsync(port, "/ws");
        raw.Socket.ReceiveBufferSize = 4096;
        string text = new('s', 16_000);
        byte[] frame = RawHubSocket.TextFrame($"{{\"name\":\"flood\",\"message\":\"{text}\"}}");
        long before = server.ResidentBytes();
        var sampler = PeakRss.Start(server);
        var (frames, bytes, _, _) = raw.Flood(_ => frame, TimeSpan.FromSeconds(6));
        long peak = await sampler.StopAsync();
        long growth = peak - before;
        output.WriteLine($"{frames} frames, {bytes / (1024 * 1024)} MB written, RSS {before / (1024 * 1024)} -> peak {peak / (1024 * 1024)} MB");
        Assert.True(growth < 160L * 1024 * 1024, $"server RSS grew by {growth / (1024 * 1024)} MB while one /ws client wrote {bytes / (1024 * 1024)} MB");
    }

    [Fact]
    public async Task Under_a_low_descriptor_limit_a_connection_flood_is_refused_with_503_and_the_server_keeps_serving()
    {
        int port = ServerProcess.FreePort();
        string db = Path.Combine(TempDir(), "fd.db");
        await using PeerProcess server = PeerProcess.Start("bash", AppContext.BaseDirectory, "-c",
            $"ulimit -n 1024 && exec dotnet '{ServerProcess.SwitchboardDll}' serve --urls http://127.0.0.1:{port} --db '{db}'");
        await server.ReadLineAsync("info: Microsoft.Hosting.Lifetime[0] Application started");

        var sockets = new List<System.Net.Sockets.Socket>();
        var statuses = new List<string>();
        for (int batch = 0; batch < 20; batch++)
        {
            foreach (var (socket, status) in await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => RawHubSocket.TryUpgradeAsync(port))))
            {
                sockets.Add(socket);
                statuses.Add(status);
            }
        }

        int upgraded = statuses.Count(s => s.StartsWith("HTTP/1.1 101", StringComparison.Ordinal));
        int refused = statuses.Count(s => s.StartsWith("HTTP/1.1 503", StringComparison.Ordinal) || s == "closed");
        output.WriteLine($"{upgraded} upgraded, {refused} refused, fds {Directory.GetFiles($"/proc/{server.Pid}/fd").Length}");
        Assert.Equal(statuses.Count, upgraded + refused); // nothing else: every attempt got a clean answer
        Assert.True(upgraded >= 400, $"only {upgraded} connections were accepted under ulimit -n 1024");
        Assert.Contains(statuses, s => s.StartsWith("HTTP/1.1 503", StringComparison.Ordinal));
        Assert.True(Directory.GetFiles($"/proc/{server.Pid}/fd").Length < 1024);
        Assert.Single(server.Stderr.Split('\n').Concat(StdoutLines(server)), l => l.Contains("Connection limit reached", StringComparison.Ordinal));

        // Connections that go away make room again: after closing 50, new ones are accepted (the server notices the closes
        // asynchronously: a few attempts).
        foreach (System.Net.Sockets.Socket s in sockets.Take(50))
        {
            s.Dispose();
        }

        string again = "";
        for (int attempt = 0; attempt < 50 && !again.StartsWith("HTTP/1.1 101", StringComparison.Ordinal); attempt++)
        {
            var (socket, status) = await RawHubSocket.TryUpgradeAsync(port);
            sockets.Add(socket);
            again = status;
            if (!again.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            {
                await Task.Delay(100);
            }
        }

        Assert.StartsWith("HTTP/1.1 101", again);
        foreach (System.Net.Sockets.Socket s in sockets)
        {
            s.Dispose();
        }

        // Still alive, and the refusals are counted.
        string metrics = "";
        for (int attempt = 0; attempt < 50 && !metrics.Contains("switchboard_connections_refused_total", StringComparison.Ordinal); attempt++)
        {
            using var http = new HttpClient();
            try
            {
                metrics = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100); // still at the limit while the closes are noticed
            }
        }

        string refusedLine = metrics.Split('\n').Single(l => l.StartsWith("switchboard_connections_refused_total", StringComparison.Ordinal));
        Assert.True(long.Parse(refusedLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) >= statuses.Count(s => s.StartsWith("HTTP/1.1 503", StringComparison.Ordinal)), refusedLine);
    }

    private static IEnumerable<string> StdoutLines(PeerProcess process)
    {
        var lines = new List<string>();
        while (process.TryReadLine(out string? line))
        {
            lines.Add(line!);
        }

        return lines;
    }

    [Fact]
    public async Task With_default_settings_one_anonymous_connection_cannot_create_rooms_or_publish_without_bound()
    {
        var (server, port) = await ServerProcess.StartAsync(Env(), 0, "--db", Path.Combine(TempDir(), "defaults.db"));
        await using var _ = server;
        await using var c = await HubClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}"), "anonymous");

        // Rooms by publishing (the join limit alone did not count these): 20 a minute.
        var codes = new List<string>();
        for (int i = 0; i < 25; i++)
        {
            JsonElement r = await c.ReplyAsync(c.Send(new { type = "publish", room = $"spam-{i}", text = "x", id = "r" + i }));
            codes.Add(HubClient.Type(r) == "ack" ? "ack" : r.GetProperty("code").GetString()!);
        }

        Assert.Equal(20, codes.Count(k => k == "ack"));
        Assert.All(codes.Skip(20), k => Assert.Equal("too_many_new_rooms", k));

        // Publishes: bursts of 100, then 20 a second.
        string[] refs = [.. Enumerable.Range(0, 130).Select(i => c.Send(new { type = "publish", room = "spam-0", text = "y", id = "p" + i }))];
        var replies = new Dictionary<string, string>();
        while (replies.Count < refs.Length)
        {
            JsonElement e = await c.NextAsync();
            if (e.TryGetProperty("ref", out JsonElement r))
            {
                replies[r.GetString()!] = HubClient.Type(e) == "ack" ? "ack" : e.GetProperty("code").GetString()!;
            }
        }

        int acked = replies.Values.Count(v => v == "ack");
        Assert.InRange(acked, 100 - 25, 100 + 10); // the burst (less the 25 publishes above), plus what refilled meanwhile
        Assert.Equal(refs.Length - acked, replies.Values.Count(v => v == "rate_limited"));
    }

    [Fact]
    public async Task A_full_disk_fails_publishes_with_internal_keeps_reads_and_the_server_up_and_damages_nothing()
    {
        string mount = TempDir();
        Run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount); // a small filesystem of its own (root only)
        try
        {
            string db = Path.Combine(mount, "full.db");
            string filler = Path.Combine(mount, "filler");
            await File.WriteAllBytesAsync(filler, new byte[2 * 1024 * 1024]); // freed later, to show the server recovers
            var (server, port) = await ServerProcess.StartAsync(0, "--db", db);
            var ws = new Uri($"ws://127.0.0.1:{port}");
            var acked = new Dictionary<string, long>();
            await using (var c = await HubClient.ConnectAsync(ws, "filler"))
            {
                Assert.Equal(1, await c.PublishAsync("disk", "the first message", "first"));
                acked["first"] = 1;
                string text = new('d', 16_000);
                string? failedId = null;
                for (int i = 0; i < 2000 && failedId is null; i++)
                {
                    string id = "m" + i;
                    JsonElement r = await c.ReplyAsync(c.Send(new { type = "publish", room = "disk", text, id }));
                    if (HubClient.Type(r) == "ack")
                    {
                        acked[id] = r.GetProperty("offset").GetInt64();
                    }
                    else
                    {
                        Assert.Equal("internal", r.GetProperty("code").GetString());
                        failedId = id;
                    }
                }

                Assert.NotNull(failedId); // the disk did fill up
                output.WriteLine($"{acked.Count} acked before the disk was full");

                // Still up, and reads work: history, and a join from the start.
                Assert.Equal("pong", HubClient.Type(await c.ReplyAsync(c.Send(new { type = "ping" }))));
                JsonElement history = await c.ReplyAsync(c.Send(new { type = "history", room = "disk", before = 2, limit = 1 }));
                Assert.Equal("the first message", history.GetProperty("messages")[0].GetProperty("text").GetString());
                await using var reader = await HubClient.ConnectAsync(ws, "reader");
                Assert.Equal("joined", HubClient.Type(await reader.ReplyAsync(reader.Send(new { type = "join", room = "disk", since = 0 }))));
                Assert.Equal(1, (await reader.ExpectAsync("message")).GetProperty("offset").GetInt64());

                // Space again: the same publish, retried with its id, is stored.
                File.Delete(filler);
                JsonElement retried = await c.ReplyAsync(c.Send(new { type = "publish", room = "disk", text = "after the disk had room again", id = failedId }));
                Assert.Equal("ack", HubClient.Type(retried));
                acked[failedId] = retried.GetProperty("offset").GetInt64();
            }

            server.Terminate();
            Assert.Equal(0, await server.WaitForExitAsync());
            await server.DisposeAsync();

            // Nothing damaged: the database checks out, and every acked message is there at its offset.
            using (var check = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Pooling=False"))
            {
                check.Open();
                using var cmd = check.CreateCommand();
                cmd.CommandText = "PRAGMA integrity_check";
                Assert.Equal("ok", cmd.ExecuteScalar() as string);
            }

            var (restarted, port2) = await ServerProcess.StartAsync(0, "--db", db);
            await using (restarted)
            {
                await using var auditor = await HubClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port2}"), "auditor");
                JsonElement joined = await auditor.ReplyAsync(auditor.Send(new { type = "join", room = "disk", since = 0 }));
                long head = joined.GetProperty("offset").GetInt64();
                Assert.Equal(acked.Count, head); // dense: the failed publishes left no hole and no trace
                var stored = new Dictionary<string, long>();
                for (long expected = 1; expected <= head; expected++)
                {
                    JsonElement m = await auditor.ExpectAsync("message");
                    Assert.Equal(expected, m.GetProperty("offset").GetInt64());
                    stored[m.GetProperty("id").GetString()!] = expected;
                }

                Assert.Equal(acked.OrderBy(kv => kv.Key), stored.OrderBy(kv => kv.Key));
            }
        }
        finally
        {
            Run("umount", "-l", mount);
        }
    }

    private static void Run(string file, params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: {error} (this test needs root, to mount a small tmpfs)");
    }

    /// <summary>Samples a process's resident set every 50 ms and keeps the highest value.</summary>
    private sealed class PeakRss
    {
        private readonly CancellationTokenSource _stop = new();
        private Task _sampling = Task.CompletedTask;
        private long _peak;

        public static PeakRss Start(PeerProcess process)
        {
            var s = new PeakRss { _peak = process.ResidentBytes() };
            s._sampling = Task.Run(async () =>
            {
                using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(50));
                while (await tick.WaitForNextTickAsync(s._stop.Token).ConfigureAwait(false))
                {
                    s._peak = Math.Max(s._peak, process.ResidentBytes());
                }
            });
            return s;
        }

        /// <summary>Stops sampling; the peak seen.</summary>
        public async Task<long> StopAsync()
        {
            await _stop.CancelAsync();
            await _sampling.ContinueWith(_ => { }, TaskScheduler.Default);
            _stop.Dispose();
            return _peak;
        }
    }
}
