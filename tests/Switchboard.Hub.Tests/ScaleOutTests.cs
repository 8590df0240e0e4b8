using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Switchboard.Client;
using Switchboard.Stores.Tests;

namespace Switchboard.Hub.Tests;

/// <summary>Shares one PostgreSQL and one Redis (started by the tests) among the scale-out tests.</summary>
public sealed class ScaleOutBackends : IAsyncLifetime
{
    public PostgresServer Postgres { get; } = new();

    public RedisServer Redis { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await Postgres.InitializeAsync();
        Redis = await RedisServer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await Redis.DisposeAsync();
        await Postgres.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ScaleOutCollection : ICollectionFixture<ScaleOutBackends>
{
    public const string Name = "scale-out";
}

/// <summary>Several `serve` processes over PostgreSQL and Redis are one service: any client on any node, resume anywhere.</summary>
[Collection(ScaleOutCollection.Name)]
public class ScaleOutTests(ScaleOutBackends backends, Xunit.Abstractions.ITestOutputHelper output)
{
    private async Task<(PeerProcess Process, Uri Ws)[]> NodesAsync(int count, RedisServer? redis = null, string? apiKey = null)
    {
        redis ??= backends.Redis;
        string database = await backends.Postgres.CreateDatabaseAsync();
        var nodes = new List<(PeerProcess, Uri)>();
        for (int i = 0; i < count; i++)
        {
            var environment = new Dictionary<string, string> { ["Switchboard__Hub__PublishRateLimit"] = "0", ["Switchboard__NodeTimeout"] = "00:00:03" };
            if (apiKey is not null)
            {
                environment["Switchboard__Api__Keys__0"] = apiKey;
            }

            var (process, port) = await ServerProcess.StartAsync(
                environment,
                0, "--store", "postgres", "--postgres", database, "--broker", "redis", "--redis", redis.Configuration);
            nodes.Add((process, new Uri($"ws://127.0.0.1:{port}")));
        }

        return [.. nodes];
    }

    [Fact]
    public async Task Publishes_through_every_node_reach_every_member_on_every_node_once_in_offset_order()
    {
        var nodes = await NodesAsync(3);
        try
        {
            const string room = "everywhere";
            var members = new List<HubClient>();
            foreach (var (_, ws) in nodes)
            {
                HubClient m = await HubClient.ConnectAsync(ws, "member");
                Assert.Equal("joined", HubClient.Type(await m.ReplyAsync(m.Send(new { type = "join", room }))));
                members.Add(m);
            }

            const int each = 100;
            var publishers = new List<HubClient>();
            foreach (var (_, ws) in nodes)
            {
                publishers.Add(await HubClient.ConnectAsync(ws, "publisher"));
            }

            // Pipelined, from all nodes at once: offsets interleave across nodes.
            await Task.WhenAll(publishers.Select((p, n) => Task.Run(async () =>
            {
                string[] refs = [.. Enumerable.Range(0, each).Select(i => p.Send(new { type = "publish", room, text = $"n{n} m{i}", id = $"n{n}-{i}" }))];
                int acks = 0;
                while (acks < each)
                {
                    if (HubClient.Type(await p.NextAsync()) == "ack")
                    {
                        acks++;
                    }
                }
            })));

            long total = nodes.Length * each;
            foreach (HubClient m in members)
            {
                var offsets = new List<long>();
                while (offsets.Count < total)
                {
                    JsonElement e = await m.ExpectAsync("message");
                    offsets.Add(e.GetProperty("offset").GetInt64());
                }

                Assert.Equal(Enumerable.Range(1, (int)total).Select(i => (long)i), offsets);
                Assert.Equal("pong", HubClient.Type(await m.ReplyAsync(m.Send(new { type = "ping" })))); // and nothing after (no duplicates)
            }

            foreach (HubClient c in members.Concat(publishers))
            {
                await c.DisposeAsync();
            }
        }
        finally
        {
            foreach (var (process, _) in nodes)
            {
                await process.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task The_server_api_on_one_node_deletes_a_history_and_disconnects_a_user_on_every_node()
    {
        const string key = "scale-out-key-0123456789";
        var nodes = await NodesAsync(2, apiKey: key);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{nodes[0].Ws.Port}") };
            http.DefaultRequestHeaders.Add("X-Api-Key", key);
            const string room = "announcements";
            await using HubClient member = await HubClient.ConnectAsync(nodes[1].Ws, "member");
            await member.ReplyAsync(member.Send(new { type = "join", room }));
            for (int i = 1; i <= 2; i++)
            {
                HttpResponseMessage posted = await http.PostAsync($"/api/rooms/{room}/messages", JsonContent(new { text = "old " + i, id = "old-" + i }));
                Assert.Equal(System.Net.HttpStatusCode.OK, posted.StatusCode);
                Assert.Equal(i, (await member.ExpectAsync("message")).GetProperty("offset").GetInt64());
            }

            HttpResponseMessage deleted = await http.DeleteAsync($"/api/rooms/{room}/messages");
            Assert.Equal(System.Net.HttpStatusCode.OK, deleted.StatusCode);
            string epoch = JsonDocument.Parse(await deleted.Content.ReadAsStringAsync()).RootElement.GetProperty("epoch").GetString()!;
            JsonElement reset = await member.ExpectAsync("reset"); // on the other node, through Redis
            Assert.Equal((epoch, 0L), (reset.GetProperty("epoch").GetString(), reset.GetProperty("offset").GetInt64()));
            await http.PostAsync($"/api/rooms/{room}/messages", JsonContent(new { text = "new 1", id = "new-1" }));
            JsonElement next = await member.ExpectAsync("message");
            Assert.Equal(("new 1", 1L), (next.GetProperty("text").GetString(), next.GetProperty("offset").GetInt64()));

            await using HubClient zed = await HubClient.ConnectAsync(nodes[1].Ws, "Zed", user: "zed");
            HttpResponseMessage disconnected = await http.PostAsync("/api/users/zed/disconnect", null);
            Assert.Equal("{\"user\":\"zed\",\"connections\":0}", await disconnected.Content.ReadAsStringAsync()); // none on the node asked
            Assert.Equal(4003, (await zed.Closed.Task.WaitAsync(TimeSpan.FromSeconds(30))).Code); // closed by the other node
        }
        finally
        {
            foreach (var (process, _) in nodes)
            {
                await process.DisposeAsync();
            }
        }
    }

    private static StringContent JsonContent(object body) => new(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_client_resumes_on_another_node_with_exactly_what_it_missed()
    {
        var nodes = await NodesAsync(2);
        try
        {
            const string room = "moving";
            await using HubClient writer = await HubClient.ConnectAsync(nodes[1].Ws, "writer");
            string epoch;
            long last;
            await using (HubClient first = await HubClient.ConnectAsync(nodes[0].Ws, "mover"))
            {
                JsonElement joined = await first.ReplyAsync(first.Send(new { type = "join", room }));
                epoch = joined.GetProperty("epoch").GetString()!;
                for (int i = 1; i <= 20; i++)
                {
                    await writer.PublishAsync(room, "m" + i, "m" + i);
                }

                for (last = 0; last < 20;)
                {
                    last = (await first.ExpectAsync("message")).GetProperty("offset").GetInt64();
                }
            }

            for (int i = 21; i <= 45; i++)
            {
                await writer.PublishAsync(room, "m" + i, "m" + i);
            }

            await using HubClient second = await HubClient.ConnectAsync(nodes[1].Ws, "mover");
            JsonElement rejoined = await second.ReplyAsync(second.Send(new { type = "join", room, since = last, epoch }));
            Assert.False(rejoined.TryGetProperty("epochChanged", out _));
            var texts = new List<string>();
            while (texts.Count < 25)
            {
                texts.Add((await second.ExpectAsync("message")).GetProperty("text").GetString()!);
            }

            Assert.Equal(Enumerable.Range(21, 25).Select(i => "m" + i), texts);
        }
        finally
        {
            foreach (var (process, _) in nodes)
            {
                await process.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Presence_is_cluster_wide_and_the_members_of_a_killed_node_leave_within_the_node_timeout()
    {
        var nodes = await NodesAsync(2);
        try
        {
            const string room = "lobby";
            await using HubClient observer = await HubClient.ConnectAsync(nodes[0].Ws, "Observer", "observer");
            await observer.ReplyAsync(observer.Send(new { type = "join", room }));
            await using HubClient tabA = await HubClient.ConnectAsync(nodes[0].Ws, "Ann", "ann");
            await using HubClient tabB = await HubClient.ConnectAsync(nodes[1].Ws, "Ann", "ann");
            await tabA.ReplyAsync(tabA.Send(new { type = "join", room }));
            JsonElement joinedOnB = await tabB.ReplyAsync(tabB.Send(new { type = "join", room }));
            Assert.Contains(joinedOnB.GetProperty("members").EnumerateArray(), m => m.GetProperty("user").GetString() == "observer"); // a member of node 0, seen on node 1
            await using HubClient bob = await HubClient.ConnectAsync(nodes[1].Ws, "Bob", "bob");
            await bob.ReplyAsync(bob.Send(new { type = "join", room }));

            // The observer saw Ann join once (two tabs, two nodes) and Bob join (another node).
            var events = new List<string>();
            while (!events.Contains("member_joined bob"))
            {
                JsonElement e = await observer.ExpectAsync2(x => HubClient.Type(x) is "member_joined" or "member_left");
                events.Add($"{HubClient.Type(e)} {e.GetProperty("user").GetString()}");
            }

            Assert.Equal(1, events.Count(e => e == "member_joined ann"));

            // kill -9 the node Bob (and Ann's second tab) are on: Bob leaves within the node timeout (3 s here) plus a check (2 s); Ann stays.
            nodes[1].Process.KillHard();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            JsonElement left = await observer.ExpectAsync2(x => HubClient.Type(x) == "member_left");
            Assert.Equal("bob", left.GetProperty("user").GetString());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
            await using HubClient late = await HubClient.ConnectAsync(nodes[0].Ws, "Late", "late");
            string[] members = [.. (await late.ReplyAsync(late.Send(new { type = "join", room }))).GetProperty("members").EnumerateArray().Select(m => m.GetProperty("user").GetString()!)];
            Assert.Contains("ann", members); // her tab on the surviving node keeps her in
            Assert.DoesNotContain("bob", members);
        }
        finally
        {
            foreach (var (process, _) in nodes)
            {
                await process.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Behind_nginx_round_robin_dotnet_and_browser_clients_on_different_nodes_chat()
    {
        var nodes = await NodesAsync(2);
        try
        {
            await using NginxServer nginx = await NginxServer.StartAsync(nodes.Select(n => n.Ws.Port));
            string room = "balanced";
            var clients = new List<SwitchboardClient>();
            for (int i = 0; i < 4; i++)
            {
                SwitchboardClient c = await SwitchboardClient.ConnectAsync(nginx.Ws, new() { Name = "c" + i });
                await c.JoinAsync(room);
                clients.Add(c);
            }

            // Round robin: both nodes hold some of them.
            using var http = new HttpClient();
            foreach (var (_, ws) in nodes)
            {
                string metrics = await http.GetStringAsync(new Uri(ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal) + "metrics"));
                Assert.Matches(new Regex(@"^switchboard_connections [1-9]", RegexOptions.Multiline), metrics);
            }

            PublishResult ack = await clients[0].PublishAsync(room, "through nginx");
            foreach (SwitchboardClient c in clients)
            {
                await using IAsyncEnumerator<HubMessage> inbox = c.Messages().GetAsyncEnumerator();
                Assert.True(await inbox.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
                Assert.Equal((ack.Offset, "through nginx"), (inbox.Current.Offset, inbox.Current.Text));
                await c.DisposeAsync();
            }

            // The browser UI, loaded through nginx; two pages (one per node, by round robin) chat.
            using IPlaywright playwright = await Playwright.CreateAsync();
            await using IBrowser browser = await Chromium.LaunchAsync(playwright);
            async Task<IPage> OpenAsync(string name)
            {
                IBrowserContext context = await browser.NewContextAsync();
                await context.AddInitScriptAsync($"localStorage.setItem('switchboard.name', JSON.stringify('{name}')); localStorage.setItem('switchboard.rooms', JSON.stringify(['{room}']));");
                IPage page = await context.NewPageAsync();
                await page.GotoAsync(nginx.Http.ToString());
                await Assertions.Expect(page.Locator("#state")).ToHaveTextAsync("connected", new() { Timeout = 30_000 });
                return page;
            }

            IPage ada = await OpenAsync("Ada");
            IPage bob = await OpenAsync("Bob");
            await Assertions.Expect(ada.Locator("#member-list li", new() { HasText = "Bob" })).ToHaveCountAsync(1, new() { Timeout = 30_000 });
            await bob.FillAsync("#text", "hello from the other node");
            await bob.PressAsync("#text", "Enter");
            await Assertions.Expect(ada.Locator("#messages li:not(.pending) .text", new() { HasText = "hello from the other node" })).ToHaveCountAsync(1, new() { Timeout = 30_000 });
        }
        finally
        {
            foreach (var (process, _) in nodes)
            {
                await process.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task While_Redis_is_down_publishes_are_acked_members_elsewhere_keep_up_from_the_store_and_readyz_says_503()
    {
        await using RedisServer redis = await RedisServer.StartAsync(); // its own: it is stopped here
        var nodes = await NodesAsync(2, redis);
        try
        {
            using var http = new HttpClient();
            Uri Health(Uri ws) => new(ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal) + "readyz");
            Uri Live(Uri ws) => new(ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal) + "healthz");
            HttpResponseMessage healthy = await http.GetAsync(Health(nodes[0].Ws));
            Assert.Equal(System.Net.HttpStatusCode.OK, healthy.StatusCode);
            Assert.Equal("ok\nstore: ok (postgres)\nbroker: ok (redis)\n", await healthy.Content.ReadAsStringAsync());

            const string room = "outage";
            await using HubClient member = await HubClient.ConnectAsync(nodes[1].Ws, "member");
            await member.ReplyAsync(member.Send(new { type = "join", room }));
            await using HubClient publisher = await HubClient.ConnectAsync(nodes[0].Ws, "publisher");
            Assert.Equal(1, await publisher.PublishAsync(room, "before"));
            Assert.Equal("before", (await member.ExpectAsync("message")).GetProperty("text").GetString());

            await redis.StopAsync();
            HttpResponseMessage down = await UntilAsync(() => http.GetAsync(Health(nodes[0].Ws)), r => r.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable, "readyz 503");
            Assert.Contains("broker: down", await down.Content.ReadAsStringAsync());
            Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync(Live(nodes[0].Ws))).StatusCode); // alive all the same: no restart

            var clock = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal(2, await publisher.PublishAsync(room, "while Redis is down")); // committed and acked all the same
            JsonElement late = await member.ExpectAsync("message"); // from the store, by the head check
            output.WriteLine($"published while Redis was down: acked and delivered on the other node after {clock.Elapsed.TotalMilliseconds:0} ms");
            Assert.Equal((2L, "while Redis is down"), (late.GetProperty("offset").GetInt64(), late.GetProperty("text").GetString()));

            await redis.StartAgainAsync();
            await UntilAsync(() => http.GetAsync(Health(nodes[0].Ws)), r => r.StatusCode == System.Net.HttpStatusCode.OK, "readyz 200 again");
            Assert.Equal(3, await publisher.PublishAsync(room, "after"));
            Assert.Equal(3, (await member.ExpectAsync("message")).GetProperty("offset").GetInt64());
        }
        finally
        {
            foreach (var (process, _) in nodes)
            {
                await process.DisposeAsync();
            }
        }
    }

    private static async Task<T> UntilAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            T value = await probe();
            if (done(value))
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// Chaos, bounded for CI: 3 nodes behind nginx, 300 members over 10 rooms and 16 publishers (the .NET client, which
    /// reconnects and resumes by itself); one node is killed with -9 mid-burst and restarted, Redis is restarted once.
    /// At the end every member has every message of its room exactly once, in order, every acked publish among them,
    /// and presence is consistent. SCALEOUT_SOAK=N publishes N messages per publisher instead of 40.
    /// </summary>
    [Fact]
    public async Task Chaos_a_node_killed_and_redis_restarted_mid_burst_loses_and_duplicates_nothing()
    {
        int perPublisher = int.TryParse(Environment.GetEnvironmentVariable("SCALEOUT_SOAK"), out int soak) ? soak : 40;
        await using RedisServer redis = await RedisServer.StartAsync();
        string database = await backends.Postgres.CreateDatabaseAsync();
        var env = new Dictionary<string, string> { ["Switchboard__Hub__PublishRateLimit"] = "0", ["Switchboard__NodeTimeout"] = "00:00:03" };
        string[] Args() => ["--store", "postgres", "--postgres", database, "--broker", "redis", "--redis", redis.Configuration];
        var nodes = new List<(PeerProcess Process, int Port)>();
        for (int i = 0; i < 3; i++)
        {
            nodes.Add(await ServerProcess.StartAsync(env, 0, Args()));
        }

        var clients = new List<SwitchboardClient>();
        try
        {
            await using NginxServer nginx = await NginxServer.StartAsync(nodes.Select(n => n.Port));
            var reconnect = new ReconnectPolicy { InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(1) };
            string[] rooms = [.. Enumerable.Range(0, 10).Select(i => "chaos-" + i)];
            var received = new Dictionary<string, List<long>>();
            var consumers = new List<Task>();
            using var stop = new CancellationTokenSource();
            for (int i = 0; i < 300; i++)
            {
                string user = "m" + i, room = rooms[i % rooms.Length];
                SwitchboardClient member = await SwitchboardClient.ConnectAsync(nginx.Ws, new() { Name = user, User = user, Reconnect = reconnect });
                clients.Add(member);
                await member.JoinAsync(room, since: 0);
                var offsets = new List<long>();
                received[user] = offsets;
                consumers.Add(Task.Run(async () =>
                {
                    try
                    {
                        await foreach (HubMessage m in member.Messages(stop.Token))
                        {
                            lock (offsets)
                            {
                                offsets.Add(m.Offset);
                            }
                        }
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }));
            }

            var acked = new System.Collections.Concurrent.ConcurrentBag<(string Room, long Offset)>();
            var publishers = new List<SwitchboardClient>();
            for (int p = 0; p < 16; p++)
            {
                publishers.Add(await SwitchboardClient.ConnectAsync(nginx.Ws, new() { Name = "p" + p, User = "p" + p, Reconnect = reconnect }));
            }

            clients.AddRange(publishers);
            int total = 16 * perPublisher;
            Task burst = Task.WhenAll(publishers.Select((pub, p) => Task.Run(async () =>
            {
                for (int i = 0; i < perPublisher; i++)
                {
                    string room = rooms[(p + i) % rooms.Length];
                    PublishResult r = await pub.PublishAsync(room, $"p{p} #{i}", $"p{p}-{i}").WaitAsync(TimeSpan.FromSeconds(120));
                    acked.Add((room, r.Offset));
                }
            })));

            await UntilAsync(() => Task.FromResult(acked.Count), n => n >= total / 4, "a quarter of the burst");
            nodes[1].Process.KillHard(); // mid-burst
            await UntilAsync(() => Task.FromResult(acked.Count), n => n >= total / 2, "half of the burst, with a node down");
            await redis.StopAsync();
            await redis.StartAgainAsync();
            await nodes[1].Process.DisposeAsync();
            nodes[1] = await ServerProcess.StartAsync(env, nodes[1].Port, Args());
            await burst.WaitAsync(TimeSpan.FromMinutes(3));

            // Every member: its room's messages 1..head, exactly once, in order; every acked offset among them.
            var heads = rooms.ToDictionary(r => r, r => acked.Where(a => a.Room == r).Select(a => a.Offset).DefaultIfEmpty(0).Max());
            foreach (string room in rooms)
            {
                Assert.Equal(acked.Count(a => a.Room == room), heads[room]); // dense: as many offsets as acks, no duplicates stored
            }

            for (int i = 0; i < 300; i++)
            {
                string user = "m" + i, room = rooms[i % rooms.Length];
                List<long> offsets = received[user];
                await UntilAsync(() => Task.FromResult(offsets), o => { lock (o) { return o.Count >= heads[room]; } }, $"{user} to catch up on {room}");
                lock (offsets)
                {
                    Assert.Equal(Enumerable.Range(1, (int)heads[room]).Select(x => (long)x), offsets);
                }
            }

            // Presence: each room lists exactly its 30 members (the killed node's entries gone, everyone re-recorded).
            await using SwitchboardClient checker = await SwitchboardClient.ConnectAsync(nginx.Ws, new() { Name = "checker", User = "checker" });
            foreach (string room in rooms)
            {
                string[] expected = [.. Enumerable.Range(0, 300).Where(i => rooms[i % rooms.Length] == room).Select(i => "m" + i).Append("checker").Order()];
                await UntilAsync(async () =>
                {
                    JoinedRoom joined = await checker.JoinAsync(room);
                    await checker.LeaveAsync(room);
                    return joined.Members.Select(m => m.User).Order().ToArray();
                }, members => members.SequenceEqual(expected), $"presence in {room} to settle");
            }

            await stop.CancelAsync();
        }
        finally
        {
            foreach (SwitchboardClient c in clients)
            {
                await c.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15)).ContinueWith(_ => { }, TaskScheduler.Default);
            }

            foreach (var (process, _) in nodes)
            {
                await process.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task The_redis_broker_with_the_sqlite_store_is_refused_at_start_up_saying_why()
    {
        await using PeerProcess server = PeerProcess.Start("dotnet", AppContext.BaseDirectory, ServerProcess.SwitchboardDll, "serve",
            "--urls", $"http://127.0.0.1:{ServerProcess.FreePort()}", "--broker", "redis", "--redis", backends.Redis.Configuration);
        Assert.Equal(2, await server.WaitForExitAsync());
        Assert.Contains("redis needs the postgres store", server.Stderr);
    }
}
