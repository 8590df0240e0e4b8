using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Switchboard.Server;

namespace Switchboard.Client.Tests;

public class SwitchboardClientTests
{
    internal static readonly Lazy<Task<Uri>> s_server = new(async () =>
    {
        WebApplication app = SwitchboardServer.Build(new SwitchboardServerOptions { Urls = "http://127.0.0.1:0", Store = "memory" }, l => l.SetMinimumLevel(LogLevel.Warning));
        await app.StartAsync();
        return new Uri(SwitchboardServer.GetAddresses(app)[0].Replace("http://", "ws://", StringComparison.Ordinal));
    });

    private static string NewRoom() => "client-" + Guid.NewGuid().ToString("N")[..12];

    private static async Task<HubMessage> NextAsync(IAsyncEnumerator<HubMessage> messages)
    {
        Assert.True(await messages.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        return messages.Current;
    }

    [Fact]
    public async Task Join_publish_receive_and_history()
    {
        Uri server = await s_server.Value;
        string room = NewRoom();
        await using var alice = await SwitchboardClient.ConnectAsync(server, new() { Name = "Alice" });
        await using var bob = await SwitchboardClient.ConnectAsync(server, new() { Name = "Bob" });
        Assert.Equal(ConnectionState.Connected, alice.State);
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        await using IAsyncEnumerator<HubMessage> bobs = bob.Messages().GetAsyncEnumerator();

        long before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        PublishResult r = await alice.PublishAsync(room, "hello bob");
        long after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.Equal((room, 1L, false), (r.Room, r.Offset, r.Duplicate));
        // The id the client made: a version 7 UUID beginning with the time it was made (ids sort by time).
        Assert.Matches("^[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$", r.Id);
        Assert.InRange(Convert.ToInt64(r.Id[..12], 16), before, after);
        HubMessage m = await NextAsync(bobs);
        Assert.Equal((room, 1L, "Alice", "hello bob"), (m.Room, m.Offset, m.Name, m.Text));

        var (history, more) = await bob.HistoryAsync(room);
        Assert.Equal(["hello bob"], history.Select(h => h.Text));
        Assert.False(more);

        HubErrorException error = await Assert.ThrowsAsync<HubErrorException>(() => alice.PublishAsync(room, ""));
        Assert.Equal("invalid_text", error.Code);
        Assert.Equal("invalid_room", (await Assert.ThrowsAsync<HubErrorException>(() => alice.JoinAsync("bad room"))).Code);
    }

    [Fact]
    public async Task A_deleted_history_is_reported_and_the_new_epoch_is_followed_from_its_first_offset()
    {
        await using WebApplication app = SwitchboardServer.Build(new SwitchboardServerOptions { Urls = "http://127.0.0.1:0", Store = "memory" }, l => l.SetMinimumLevel(LogLevel.Warning));
        await app.StartAsync();
        var server = new Uri(SwitchboardServer.GetAddresses(app)[0].Replace("http://", "ws://", StringComparison.Ordinal));
        ISwitchboardHubContext hub = app.Services.GetRequiredService<ISwitchboardHubContext>();
        string room = NewRoom();
        await using var client = await SwitchboardClient.ConnectAsync(server, new() { Name = "Dee" });
        await client.JoinAsync(room);
        await using IAsyncEnumerator<HubMessage> messages = client.Messages().GetAsyncEnumerator();
        await using IAsyncEnumerator<HubEvent> events = client.Events().GetAsyncEnumerator();
        for (int i = 1; i <= 3; i++)
        {
            await client.PublishAsync(room, "old " + i);
            Assert.Equal(i, (await NextAsync(messages)).Offset);
        }

        string epoch = (await hub.DeleteHistoryAsync(room))!;
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(new HistoryReset(room, epoch), events.Current);
        await hub.PublishAsync(room, "first of the new history", "n1");
        HubMessage first = await NextAsync(messages); // offset 1 again: a client that kept its old cursor (3) would drop it
        Assert.Equal((1L, "first of the new history"), (first.Offset, first.Text));
        Assert.Equal(2, (await client.PublishAsync(room, "second")).Offset);
        Assert.Equal(2, (await NextAsync(messages)).Offset);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Long_messages_and_history_pages_round_trip_with_and_without_compression(bool compression)
    {
        Uri server = await s_server.Value;
        string room = NewRoom();
        await using var writer = await SwitchboardClient.ConnectAsync(server, new() { Name = "Writer", Compression = compression });
        await using var reader = await SwitchboardClient.ConnectAsync(server, new() { Name = "Reader", Compression = !compression });
        await reader.JoinAsync(room);
        await using IAsyncEnumerator<HubMessage> inbox = reader.Messages().GetAsyncEnumerator();
        string[] texts = [.. Enumerable.Range(0, 20).Select(i => string.Concat(Enumerable.Repeat($"line {i} of a long, repetitive message; ", 50 + i)))];
        foreach (string t in texts)
        {
            await writer.PublishAsync(room, t);
        }

        foreach (string t in texts)
        {
            Assert.Equal(t, (await NextAsync(inbox)).Text);
        }

        var (history, _) = await writer.HistoryAsync(room, limit: 20);
        Assert.Equal(texts, history.Select(h => h.Text));
    }

    [Fact]
    public async Task A_retried_publish_is_stored_once()
    {
        Uri server = await s_server.Value;
        string room = NewRoom();
        await using var first = await SwitchboardClient.ConnectAsync(server, new() { Name = "Carol", User = "carol" });
        PublishResult original = await first.PublishAsync(room, "only once", "fixed-id");
        await using var retry = await SwitchboardClient.ConnectAsync(server, new() { Name = "Carol", User = "carol" });
        PublishResult again = await retry.PublishAsync(room, "only once", "fixed-id");
        Assert.Equal(original.Offset, again.Offset);
        Assert.True(again.Duplicate);
        Assert.Single((await retry.HistoryAsync(room)).Messages);
    }

    [Fact]
    public async Task Room_channel_is_a_stream_and_a_sink()
    {
        Uri server = await s_server.Value;
        string room = NewRoom();
        await using var client = await SwitchboardClient.ConnectAsync(server, new() { Name = "Dan" });
        RoomChannel channel = await client.OpenChannelAsync(room);
        await channel.SendAsync("into the sink");
        HubMessage m = await channel.Stream.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("into the sink", m.Text);
    }

    [Fact]
    public void Backoff_grows_exponentially_up_to_the_cap_and_jitter_stays_within_it()
    {
        var policy = new ReconnectPolicy { InitialDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromSeconds(10), Jitter = false };
        Assert.Equal([1, 2, 4, 8, 10, 10], Enumerable.Range(1, 6).Select(a => policy.DelayFor(a, new Random(1)).TotalSeconds));
        var jittered = new ReconnectPolicy { InitialDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromSeconds(10) };
        var random = new Random(7);
        TimeSpan[] delays = [.. Enumerable.Range(0, 1000).Select(_ => jittered.DelayFor(4, random))];
        Assert.All(delays, d => Assert.InRange(d.TotalSeconds, 0, 8));
        Assert.True(delays.Distinct().Count() > 900, "jitter spreads clients out");
    }
}

/// <summary>Reconnect and resume against a real server process killed with SIGKILL and restarted.</summary>
public class ReconnectTests
{
    [Fact]
    public async Task After_a_server_crash_every_message_arrives_once_in_order_and_an_offline_publish_lands_once()
    {
        string db = Path.Combine(Directory.CreateTempSubdirectory("switchboard-client-").FullName, "hub.db");
        var (server, port) = await ServerProcess.StartAsync(0, "--db", db);
        var url = new Uri($"ws://127.0.0.1:{port}");
        var fast = new ReconnectPolicy { InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(500) };
        const string room = "resume";
        await using var reader = await SwitchboardClient.ConnectAsync(url, new() { Name = "Reader", Reconnect = fast });
        await using var writer = await SwitchboardClient.ConnectAsync(url, new() { Name = "Writer", Reconnect = fast });
        await reader.JoinAsync(room, since: 0);
        await using IAsyncEnumerator<ConnectionState> states = reader.StateChanges().GetAsyncEnumerator();
        for (int i = 1; i <= 10; i++)
        {
            await writer.PublishAsync(room, "before " + i);
        }

        var received = new List<HubMessage>();
        await using IAsyncEnumerator<HubMessage> messages = reader.Messages().GetAsyncEnumerator();
        while (received.Count < 10)
        {
            Assert.True(await messages.MoveNextAsync());
            received.Add(messages.Current);
        }

        server.KillHard();
        await server.WaitForExitAsync();
        await server.DisposeAsync();
        do
        {
            Assert.True(await states.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }
        while (states.Current != ConnectionState.Reconnecting); // the stream starts with the first Connected
        Assert.NotNull(reader.NextRetry);

        Task<PublishResult> offline = reader.PublishAsync(room, "sent while offline");
        var (restarted, _) = await ServerProcess.StartAsync(port, "--db", db);
        await using var __ = restarted;
        PublishResult landed = await offline.WaitAsync(TimeSpan.FromSeconds(60));
        for (int i = 11; i <= 20; i++)
        {
            await writer.PublishAsync(room, "after " + i);
        }

        while (received.Count < 21)
        {
            Assert.True(await messages.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60)));
            received.Add(messages.Current);
        }

        Assert.Equal(Enumerable.Range(1, 21).Select(i => (long)i), received.Select(m => m.Offset));
        Assert.Single(received, m => m.Text == "sent while offline");
        Assert.Equal(landed.Offset, received.Single(m => m.Text == "sent while offline").Offset);
        var (history, _) = await writer.HistoryAsync(room, limit: 100);
        Assert.Equal(21, history.Count);
        Assert.Equal(ConnectionState.Connected, reader.State);
    }
}
