using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Switchboard.Hub.UnitTests;

/// <summary>
/// A connection that does not write anything until the test lets it: queued bytes only drain when the test calls
/// <see cref="DrainAsync"/>. Records the largest backlog it ever held.
/// </summary>
internal sealed class SlowConnection : IHubConnection
{
    private readonly List<OutboundMessage> _queue = [];
    private readonly List<string> _delivered = [];
    private TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _queued;

    public string Id => "slow";

    public long QueuedBytes => Interlocked.Read(ref _queued);

    public long MaxQueuedBytes { get; private set; }

    public IReadOnlyList<string> Delivered
    {
        get
        {
            lock (_queue)
            {
                return [.. _delivered];
            }
        }
    }

    public bool Send(OutboundMessage message)
    {
        lock (_queue)
        {
            _queue.Add(message);
            _queued += message.Length;
            MaxQueuedBytes = Math.Max(MaxQueuedBytes, _queued);
        }

        return true;
    }

    public bool TrySendLive(OutboundMessage message, long softLimitBytes) => QueuedBytes <= softLimitBytes && Send(message);

    public Task WhenDrainedAsync()
    {
        lock (_queue)
        {
            return _queued == 0 ? Task.CompletedTask : _drained.Task;
        }
    }

    /// <summary>"Writes" everything queued so far.</summary>
    public void Drain()
    {
        TaskCompletionSource done;
        lock (_queue)
        {
            _delivered.AddRange(_queue.Select(m => m.ToString()));
            _queue.Clear();
            _queued = 0;
            done = _drained;
            _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        done.TrySetResult();
    }

    public void Close(ushort code, string reason)
    {
    }
}

public class HubSessionUnitTests
{
    [Fact]
    public async Task A_connection_makes_its_table_of_rooms_only_when_it_joins_one()
    {
        await using var hub = new Hub(new InMemoryMessageStore(), new HubOptions());
        HubSession session = hub.Connect(new SlowConnection(), new HubIdentity("u", "u"));
        await session.HandleAsync(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("{\"type\":\"ping\"}")));
        await session.HandleAsync(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"hi\",\"id\":\"1\"}")));
        await session.HandleAsync(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("{\"type\":\"leave\",\"room\":\"r\"}"))); // not joined
        await session.DisconnectedAsync();
        Assert.False(session.HoldsRoomTable); // idle, publishing or disconnecting: no table (80 bytes a connection)

        HubSession member = hub.Connect(new SlowConnection(), new HubIdentity("m", "m"));
        await member.HandleAsync(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("{\"type\":\"join\",\"room\":\"r\"}")));
        Assert.True(member.HoldsRoomTable);
        await member.DisconnectedAsync();
    }

    [Fact]
    public async Task A_member_that_falls_behind_is_taken_off_live_then_replays_from_history_losing_nothing()
    {
        var options = new HubOptions { LiveQueueLimit = 4 * 1024, CatchUpQueueLimit = 4 * 1024, CatchUpPageSize = 50 };
        await using var hub = new Hub(new InMemoryMessageStore(), options);
        var slow = new SlowConnection();
        HubSession session = hub.Connect(slow, new HubIdentity("slow", "slow"));
        await session.HandleAsync(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("{\"type\":\"join\",\"room\":\"busy\"}")));
        for (int i = 0; i < 1000 && !slow.Delivered.Any(d => d.Contains("\"joined\"", StringComparison.Ordinal)); i++)
        {
            await Task.Yield();
            slow.Drain(); // welcome + joined
        }

        var from = new HubIdentity("fast", "fast");
        const int count = 1000; // far more than 4 KiB of messages while the slow member writes nothing
        await Task.WhenAll(Enumerable.Range(1, count).Select(i => hub.PublishAsync("busy", from, "burst " + i)));
        Assert.True(slow.QueuedBytes <= options.LiveQueueLimit + 1024, $"live queue grew to {slow.QueuedBytes}");

        int messages = 0;
        for (int round = 0; round < 100_000 && messages < count; round++)
        {
            await Task.Yield();
            slow.Drain();
            messages = slow.Delivered.Count(d => d.Contains("\"type\":\"message\"", StringComparison.Ordinal));
        }

        long[] offsets = [.. slow.Delivered.Where(d => d.Contains("\"type\":\"message\"", StringComparison.Ordinal))
            .Select(d => JsonDocument.Parse(d).RootElement.GetProperty("offset").GetInt64())];
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), offsets); // every message once, in order
        Assert.Contains(slow.Delivered, d => d.Contains("\"type\":\"lagging\"", StringComparison.Ordinal));
        Assert.True(slow.MaxQueuedBytes <= options.LiveQueueLimit + (50 * 200) + 1024, $"max backlog {slow.MaxQueuedBytes}");

        // And it is live again afterwards.
        await hub.PublishAsync("busy", from, "after recovery");
        slow.Drain();
        Assert.Contains(slow.Delivered, d => d.Contains("after recovery", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Catching_up_is_paced_by_the_connection_so_server_memory_stays_bounded()
    {
        var options = new HubOptions { CatchUpPageSize = 100, CatchUpQueueLimit = 16 * 1024, RecentCacheSize = 10 };
        await using var hub = new Hub(new InMemoryMessageStore(), options);
        var from = new HubIdentity("bulk", "bulk");
        const int count = 20_000;
        for (int i = 0; i < count; i += 1000)
        {
            await Task.WhenAll(Enumerable.Range(i, 1000).Select(k => hub.PublishAsync("big", from, "message number " + k)));
        }

        var slow = new SlowConnection();
        HubSession session = hub.Connect(slow, new HubIdentity("late", "late"));
        await session.HandleAsync(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("""{"type":"join","room":"big","since":0}""")));

        // Drain as a slow socket would, until the whole history has been delivered.
        int messages = 0;
        for (int round = 0; round < 100_000 && messages < count; round++)
        {
            await Task.Yield();
            slow.Drain();
            messages = slow.Delivered.Count(d => d.Contains("\"type\":\"message\"", StringComparison.Ordinal));
        }

        Assert.Equal(count, messages);
        long[] offsets = [.. slow.Delivered.Where(d => d.Contains("\"type\":\"message\"", StringComparison.Ordinal))
            .Select(d => JsonDocument.Parse(d).RootElement.GetProperty("offset").GetInt64())];
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), offsets);

        // The backlog never exceeded the pacing limit plus one page (~100 messages of ~150 bytes), far below 20,000 messages.
        long onePage = 100 * 200;
        Assert.True(slow.MaxQueuedBytes <= options.CatchUpQueueLimit + onePage, $"max backlog {slow.MaxQueuedBytes} bytes");
    }
}

public class HistoryPacingUnitTests
{
    [Fact]
    public async Task History_is_refused_with_busy_while_the_connection_is_over_its_soft_limit_and_served_once_it_drained()
    {
        var options = new HubOptions { CatchUpQueueLimit = 4 * 1024, LiveQueueLimit = 1024 * 1024 };
        await using var hub = new Hub(new InMemoryMessageStore(), options);
        var slow = new SlowConnection();
        HubSession session = hub.Connect(slow, new HubIdentity("reader", "reader"));
        await session.HandleAsync(Command("""{"type":"join","room":"live","ref":"j"}"""));
        await hub.PublishAsync("live", new HubIdentity("w", "w"), "warm-up");
        slow.Drain();

        // Live messages pile up unread: past the soft limit.
        var from = new HubIdentity("writer", "writer");
        await Task.WhenAll(Enumerable.Range(0, 100).Select(i => hub.PublishAsync("live", from, new string('x', 100) + i)));
        Assert.True(slow.QueuedBytes > options.CatchUpQueueLimit);

        Task handled = session.HandleAsync(Command("""{"type":"history","room":"live","ref":"h1"}""")).AsTask();
        Assert.False(handled.IsCompleted); // the reply joined a full queue: nothing more is read until it drains
        await DrainUntilAsync(slow, handled);
        string reply = Assert.Single(slow.Delivered, d => d.Contains("\"h1\"", StringComparison.Ordinal));
        Assert.Contains("\"code\":\"busy\"", reply);

        Task second = session.HandleAsync(Command("""{"type":"history","room":"live","ref":"h2"}""")).AsTask();
        await DrainUntilAsync(slow, second);
        Assert.Contains(slow.Delivered, d => d.Contains("\"type\":\"history\"", StringComparison.Ordinal) && d.Contains("\"h2\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_history_page_is_cut_at_its_byte_limit_newest_first_and_paging_returns_the_rest_exactly()
    {
        var options = new HubOptions { MaxHistoryBytes = 64 * 1024 };
        await using var hub = new Hub(new InMemoryMessageStore(), options);
        var from = new HubIdentity("w", "w");
        for (int i = 1; i <= 100; i++)
        {
            await hub.PublishAsync("big", from, $"{i:D4}" + new string('y', 4000));
        }

        var reader = new SlowConnection();
        HubSession session = hub.Connect(reader, new HubIdentity("r", "r"));
        var offsets = new List<long>();
        long? before = null;
        int pages = 0;
        while (true)
        {
            string beforeField = before is null ? "" : $",\"before\":{before}";
            await session.HandleAsync(Command($$"""{"type":"history","room":"big","limit":500,"ref":"p{{pages}}"{{beforeField}}}"""));
            reader.Drain();
            string json = reader.Delivered.Last(d => d.Contains($"\"p{pages}\"", StringComparison.Ordinal));
            Assert.True(json.Length <= options.MaxHistoryBytes + 4096, $"page of {json.Length} bytes");
            using JsonDocument doc = JsonDocument.Parse(json);
            long[] page = [.. doc.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("offset").GetInt64())];
            Assert.NotEmpty(page);
            Assert.Equal(page.Order(), page);
            offsets.InsertRange(0, page);
            pages++;
            if (!doc.RootElement.GetProperty("more").GetBoolean())
            {
                break;
            }

            before = page[0];
        }

        Assert.True(pages > 5, $"{pages} pages"); // 100 messages of 4 KB do not fit in 64 KiB
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), offsets);
    }

    private static ReadOnlySequence<byte> Command(string json) => new(Encoding.UTF8.GetBytes(json));

    /// <summary>Lets the connection write, as a socket would, until the command's handling completed.</summary>
    private static async Task DrainUntilAsync(SlowConnection connection, Task handling)
    {
        for (int round = 0; round < 100_000 && !handling.IsCompleted; round++)
        {
            connection.Drain();
            await Task.Yield();
        }

        await handling.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
