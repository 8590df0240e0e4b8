using System.Globalization;

namespace Switchboard.Hub.Tests;

public class OperationsTests
{
    private static async Task<Dictionary<string, double>> ScrapeAsync(HubTestServer server)
    {
        using var http = new HttpClient();
        HttpResponseMessage r = await http.GetAsync(new Uri(new Uri(server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal)), "/metrics"));
        Assert.Equal("text/plain", r.Content.Headers.ContentType!.MediaType);
        string text = await r.Content.ReadAsStringAsync();
        var values = new Dictionary<string, double>();
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#'))
            {
                Assert.Matches(@"^# (HELP|TYPE) switchboard_[a-z_]+ ", line);
                continue;
            }

            int space = line.LastIndexOf(' ');
            values[line[..space]] = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }

        return values;
    }

    [Fact]
    public async Task The_socket_transports_receive_buffers_and_its_bound_are_on_metrics()
    {
        HubTestServer server = await HubTestServer.StartAsync(o => o.Store = "memory");
        try
        {
            Dictionary<string, double> values = await ScrapeAsync(server);
            Assert.True(values["switchboard_transport_receive_buffer_bytes"] >= 0); // process-wide: other tests' connections count too
            Assert.True(values.ContainsKey("switchboard_transport_read_bound_aborts_total"));
        }
        finally
        {
            await server.App.StopAsync();
        }
    }

    [Fact]
    public async Task The_sqlite_logs_size_its_cached_rooms_and_the_rooms_known_are_on_metrics()
    {
        HubTestServer server = await HubTestServer.StartAsync(null); // the default store: SQLite
        try
        {
            await using (var hub = await HubClient.ConnectAsync(server.Ws, "logger"))
            {
                await hub.PublishAsync(HubTestServer.NewRoom("log"), "into the log");
            }

            Dictionary<string, double> values = await ScrapeAsync(server);
            Assert.True(values["switchboard_sqlite_wal_bytes"] > 4096, $"log {values["switchboard_sqlite_wal_bytes"]} bytes"); // a committed page and its header
            Assert.True(values["switchboard_sqlite_cached_rooms"] >= 1); // the room just published to
            Assert.Equal(server.Hub.KnownRooms, values["switchboard_rooms_known"]);
            Assert.True(server.Hub.KnownRooms >= 2, $"{server.Hub.KnownRooms} rooms known"); // "general" and that room
        }
        finally
        {
            await server.App.StopAsync();
        }
    }

    [Fact]
    public async Task Closed_connections_are_counted_by_endpoint_and_close_code()
    {
        HubTestServer server = await HubTestServer.StartAsync(o => o.Store = "memory");
        try
        {
            await using (var hub = await HubClient.ConnectAsync(server.Ws, "closing"))
            {
                await hub.CloseAsync(4000, "bye"); // the server echoes the code
            }

            await using (var ws = await HubClient.ConnectAsync(server.Ws, "", path: "/ws"))
            {
                await ws.CloseAsync(1000, "done");
            }

            Dictionary<string, double> after = await ScrapeAsync(server);
            for (int i = 0; i < 100 && !(after.ContainsKey("switchboard_connections_closed_total{code=\"1000\",endpoint=\"/ws\"}") && after.ContainsKey("switchboard_connections_closed_total{code=\"4000\",endpoint=\"/hub\"}")); i++)
            {
                after = await ScrapeAsync(server); // the server counts a close once its side has finished; the client may be first
            }

            Assert.Equal(1, after["switchboard_connections_closed_total{code=\"4000\",endpoint=\"/hub\"}"]);
            Assert.Equal(1, after["switchboard_connections_closed_total{code=\"1000\",endpoint=\"/ws\"}"]);
            Assert.Equal(2, after.Where(kv => kv.Key.StartsWith("switchboard_connections_closed_total{", StringComparison.Ordinal)).Sum(kv => kv.Value));
        }
        finally
        {
            await server.App.StopAsync();
            await server.App.DisposeAsync();
        }
    }

    [Fact]
    public async Task Two_servers_in_one_process_count_apart()
    {
        HubTestServer a = await HubTestServer.StartAsync(o => o.Store = "memory");
        HubTestServer b = await HubTestServer.StartAsync(o => o.Store = "memory");
        try
        {
            await using (var c = await HubClient.ConnectAsync(a.Ws, "only-on-a"))
            {
                await c.PublishAsync(HubTestServer.NewRoom(), "counted on a");
                Dictionary<string, double> onA = await ScrapeAsync(a), onB = await ScrapeAsync(b);
                Assert.Equal(1, onA["switchboard_connections"]);
                Assert.Equal(0, onB["switchboard_connections"]);
                Assert.Equal(1, onA[Dynamic("switchboard_hub_messages_in_total")]);
                Assert.Equal(0, onB[Dynamic("switchboard_hub_messages_in_total")]);
                Assert.Equal(1, onA[Dynamic("switchboard_rooms")]);
                Assert.Equal(0, onB[Dynamic("switchboard_rooms")]);
            }
        }
        finally
        {
            foreach (HubTestServer s in new[] { a, b })
            {
                await s.App.StopAsync();
                await s.App.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Metrics_in_prometheus_format_count_connections_messages_bytes_and_store_latency()
    {
        HubTestServer server = await HubTestServer.Shared;
        await using var warm = await HubClient.ConnectAsync(server.Ws, "warm");
        await warm.PublishAsync(HubTestServer.NewRoom(), "warm-up");
        Dictionary<string, double> before = await ScrapeAsync(server);

        await using var c = await HubClient.ConnectAsync(server.Ws, "metered");
        string room = HubTestServer.NewRoom();
        await c.ReplyAsync(c.Send(new { type = "join", room }));
        await c.PublishAsync(room, "counted");
        Dictionary<string, double> after = await ScrapeAsync(server);

        Assert.True(after["switchboard_connections"] >= 2);
        Assert.True(after["switchboard_connections_opened_total"] > before["switchboard_connections_opened_total"]);
        Assert.True(after[Dynamic("switchboard_hub_messages_in_total")] > before[Dynamic("switchboard_hub_messages_in_total")]);
        Assert.True(after[Dynamic("switchboard_hub_messages_out_total")] > before[Dynamic("switchboard_hub_messages_out_total")]);
        Assert.True(after["switchboard_messages_received_total"] > before["switchboard_messages_received_total"]);
        Assert.True(after["switchboard_bytes_received_total"] > before["switchboard_bytes_received_total"]);
        Assert.True(after["switchboard_bytes_sent_total"] > before["switchboard_bytes_sent_total"]);
        Assert.True(after["switchboard_store_append_seconds_count"] > before["switchboard_store_append_seconds_count"]);
        Assert.True(after[Dynamic("switchboard_rooms")] >= 1);
        Assert.True(after.ContainsKey("switchboard_slow_consumer_disconnects_total"));
        Assert.Equal(after["switchboard_store_append_seconds_count"], after["switchboard_store_append_seconds_bucket{le=\"+Inf\"}"]);
    }

    private static string Dynamic(string name) => name + "{room_kind=\"dynamic\"}";

    [Fact]
    public async Task Room_metrics_are_tagged_with_the_kind_of_room_never_its_name()
    {
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Hub = new HubOptions { Rooms = ["lobby"] };
        });
        try
        {
            await using var c = await HubClient.ConnectAsync(server.Ws, "kinds");
            string dynamicRoom = HubTestServer.NewRoom();
            await c.PublishAsync("general", "to the default room");
            await c.PublishAsync("lobby", "to a configured room");
            await c.PublishAsync("lobby", "again");
            await c.PublishAsync(dynamicRoom, "to a room made on first use");
            Dictionary<string, double> metrics = await ScrapeAsync(server);
            Assert.Equal(1, metrics["switchboard_hub_messages_in_total{room_kind=\"default\"}"]);
            Assert.Equal(2, metrics["switchboard_hub_messages_in_total{room_kind=\"configured\"}"]);
            Assert.Equal(1, metrics["switchboard_hub_messages_in_total{room_kind=\"dynamic\"}"]);
            Assert.Equal(3, metrics.Where(kv => kv.Key.StartsWith("switchboard_rooms{", StringComparison.Ordinal)).Sum(kv => kv.Value));
            Assert.DoesNotContain(metrics.Keys, k => k.Contains(dynamicRoom, StringComparison.Ordinal) || k.Contains("lobby", StringComparison.Ordinal));
        }
        finally
        {
            await server.App.StopAsync();
            await server.App.DisposeAsync();
        }
    }

    [Fact]
    public async Task Healthz_is_liveness_and_readyz_asks_the_store_and_the_broker()
    {
        HubTestServer server = await HubTestServer.Shared;
        using var http = new HttpClient();
        var root = new Uri(server.Ws.ToString().Replace("ws://", "http://", StringComparison.Ordinal));
        HttpResponseMessage live = await http.GetAsync(new Uri(root, "/healthz"));
        Assert.Equal(System.Net.HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("ok\n", await live.Content.ReadAsStringAsync());
        HttpResponseMessage ready = await http.GetAsync(new Uri(root, "/readyz"));
        Assert.Equal(System.Net.HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("ok\nstore: ok\nbroker: ok (this server only)\n", await ready.Content.ReadAsStringAsync());
    }
}
