using System.Text.Json;

namespace Switchboard.Hub.Tests;

public class DeliveryBatchingTests
{
    /// <summary>Records Begin, End and every send in one sequence.</summary>
    private sealed class Recorder : IDeliveryBatching
    {
        public List<string> Events { get; } = [];

        public void Begin()
        {
            lock (Events)
            {
                Events.Add("begin");
            }
        }

        public void End()
        {
            lock (Events)
            {
                Events.Add("end");
            }
        }

        public void Sent(string what)
        {
            lock (Events)
            {
                Events.Add(what);
            }
        }
    }

    /// <summary>
    /// Bob joins <paramref name="room"/>; alice publishes one message, and five more once the store holds the first
    /// append (<paramref name="held"/>).
    /// </summary>
    private static async Task<(Task<AppendResult> First, Task<AppendResult>[] Behind)> PublishBehindAHeldAppendAsync(Hub hub, Recorder recorder, TaskCompletionSource held, string room)
    {
        var from = new HubIdentity("alice", "alice");
        HubSession session = hub.Connect(new Member(recorder), new HubIdentity("bob", "bob"));
        await session.HandleAsync(new System.Buffers.ReadOnlySequence<byte>(System.Text.Encoding.UTF8.GetBytes($"{{\"type\":\"join\",\"room\":\"{room}\"}}")));
        Task<AppendResult> first = hub.PublishAsync(room, from, "first");
        await held.Task.WaitAsync(TimeSpan.FromSeconds(10));
        return (first, [.. Enumerable.Range(1, 5).Select(i => hub.PublishAsync(room, from, "behind " + i))]);
    }

    /// <summary>
    /// The recorded events once <paramref name="messages"/> messages went out and every batch begun has ended: an ack
    /// completes its publish while the room's worker is still inside the fan-out batch, before its End.
    /// </summary>
    private static async Task<List<string>> SettledAsync(Recorder recorder, int messages)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            List<string> events;
            lock (recorder.Events)
            {
                events = [.. recorder.Events];
            }

            if (events.Count(e => e.StartsWith("message ", StringComparison.Ordinal)) >= messages && events.Count(e => e == "begin") == events.Count(e => e == "end"))
            {
                return events;
            }

            Assert.True(DateTime.UtcNow < deadline, "a batch never ended: " + string.Join(", ", events));
            await Task.Yield();
        }
    }

    private sealed class Member(Recorder recorder) : IHubConnection
    {
        public string Id => "member";

        public long QueuedBytes => 0;

        public bool Send(OutboundMessage message)
        {
            using JsonDocument doc = JsonDocument.Parse(message.Utf8Json);
            JsonElement root = doc.RootElement;
            recorder.Sent(root.GetProperty("type").GetString() == "message" ? "message " + root.GetProperty("offset").GetInt64() : root.GetProperty("type").GetString()!);
            return true;
        }

        public bool TrySendLive(OutboundMessage message, long softLimitBytes) => Send(message);

        public Task WhenDrainedAsync() => Task.CompletedTask;

        public void Close(ushort code, string reason)
        {
        }
    }

    /// <summary>A store that passes everything to another; a test's store changes what it needs.</summary>
    private abstract class DelegatingStore(IMessageStore inner) : IMessageStore
    {
        protected IMessageStore Inner => inner;

        public virtual bool AppendsInIssueOrder => false;

        public abstract ValueTask<IReadOnlyList<AppendResult>> AppendAsync(string room, IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default);

        public ValueTask<RoomState> OpenRoomAsync(string room, CancellationToken cancellationToken = default) => inner.OpenRoomAsync(room, cancellationToken);

        public ValueTask<IReadOnlyList<StoredMessage>> ReadAfterAsync(string room, long afterOffset, int limit, CancellationToken cancellationToken = default) =>
            inner.ReadAfterAsync(room, afterOffset, limit, cancellationToken);

        public ValueTask<IReadOnlyList<StoredMessage>> ReadBeforeAsync(string room, long beforeOffset, int limit, CancellationToken cancellationToken = default) =>
            inner.ReadBeforeAsync(room, beforeOffset, limit, cancellationToken);

        public ValueTask<RoomState> TrimAsync(string room, RetentionPolicy policy, DateTimeOffset now, CancellationToken cancellationToken = default) =>
            inner.TrimAsync(room, policy, now, cancellationToken);

        public ValueTask<RoomState> ResetAsync(string room, CancellationToken cancellationToken = default) => inner.ResetAsync(room, cancellationToken);

        public ValueTask<IReadOnlyList<string>> ListRoomsAsync(CancellationToken cancellationToken = default) => inner.ListRoomsAsync(cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>Holds the first append until released, so that the publishes behind it are committed together.</summary>
    private sealed class GatedStore(IMessageStore inner) : DelegatingStore(inner)
    {
        public TaskCompletionSource FirstAppendHeld { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Set once the test has queued what must wait behind the first append: until then the room's worker
        /// is held inside that append's call, so it cannot take any of it early.</summary>
        public ManualResetEventSlim Queued { get; } = new();

        private int _appends;

        public override async ValueTask<IReadOnlyList<AppendResult>> AppendAsync(string room, IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Increment(ref _appends) == 1)
            {
                FirstAppendHeld.TrySetResult();
                Assert.True(Queued.Wait(TimeSpan.FromSeconds(10)), "the test never queued the rest");
                await Release.Task;
            }

            return await Inner.AppendAsync(room, messages, cancellationToken);
        }
    }

    [Fact]
    public async Task A_commit_of_several_messages_is_fanned_out_inside_one_batch()
    {
        var recorder = new Recorder();
        var store = new GatedStore(new InMemoryMessageStore());
        await using var hub = new Hub(store, new HubOptions(), batching: recorder);
        var (first, behind) = await PublishBehindAHeldAppendAsync(hub, recorder, store.FirstAppendHeld, "batched");
        Room room = (await hub.GetRoomAsync("batched", create: false))!;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (room.Pending < 5)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{room.Pending} of 5 queued behind the held append");
            await Task.Yield();
        }

        store.Queued.Set();
        store.Release.SetResult();
        await Task.WhenAll([first, .. behind]).WaitAsync(TimeSpan.FromSeconds(10));
        List<string> events = await SettledAsync(recorder, messages: 6);

        int second = events.IndexOf("message 2");
        Assert.True(second > 0, string.Join(", ", events));
        int begin = events.LastIndexOf("begin", second);
        int end = events.IndexOf("end", second);
        Assert.True(begin >= 0 && end > second, string.Join(", ", events));
        Assert.Equal(["message 2", "message 3", "message 4", "message 5", "message 6"], events[(begin + 1)..end]);
    }

    /// <summary>Applies appends at once, in issue order, but holds the first one's completion until released (its commit is slow).</summary>
    private sealed class SlowFirstCommitStore(InMemoryMessageStore inner) : DelegatingStore(inner)
    {
        public TaskCompletionSource FirstAppendHeld { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Issued => Volatile.Read(ref _appends);

        private int _appends;

        public override bool AppendsInIssueOrder => true;

        public override async ValueTask<IReadOnlyList<AppendResult>> AppendAsync(string room, IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default)
        {
            IReadOnlyList<AppendResult> results = await Inner.AppendAsync(room, messages, cancellationToken); // offsets in issue order
            if (Interlocked.Increment(ref _appends) == 1)
            {
                FirstAppendHeld.TrySetResult();
                await Release.Task;
            }

            return results;
        }
    }

    [Fact]
    public async Task A_room_issues_its_next_append_while_an_ordered_store_commits_the_previous_one_and_fans_out_in_offset_order()
    {
        var recorder = new Recorder();
        var store = new SlowFirstCommitStore(new InMemoryMessageStore());
        await using var hub = new Hub(store, new HubOptions(), batching: recorder);
        var (first, behind) = await PublishBehindAHeldAppendAsync(hub, recorder, store.FirstAppendHeld, "pipelined");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (store.Issued < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "no second append was issued while the first was committing");
            await Task.Yield();
        }

        Assert.False(first.IsCompleted); // still committing: nothing acked or delivered out of order meanwhile
        store.Release.SetResult();
        AppendResult[] results = await Task.WhenAll([first, .. behind]).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([1L, 2, 3, 4, 5, 6], results.Select(r => r.Message.Offset));

        List<string> events = await SettledAsync(recorder, messages: 6);
        Assert.Equal(["message 1", "message 2", "message 3", "message 4", "message 5", "message 6"], events.Where(e => e.StartsWith("message ", StringComparison.Ordinal)));
    }
}
