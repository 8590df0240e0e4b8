namespace Switchboard.WebSockets;

/// <summary>
/// Corks the sends a thread makes: between <see cref="Begin"/> and <see cref="End"/> every send is queued as usual, but
/// no connection's writer starts; at the outermost <see cref="End"/> each connection that got anything writes all of
/// it at once. A fan-out of a batch of messages then costs one write per member, not one per member per message (what
/// uWebSockets does per event-loop iteration).
/// </summary>
/// <remarks>
/// <para>Begin and End must be called on the same thread with nothing asynchronous between them (the cork is the
/// thread's); they nest. A connection's own read loop already writes its replies once per read and is unaffected.</para>
/// <para>At End the first <see cref="InlineWriters"/> writers run on the calling thread — a direct-socket write that
/// fits the socket buffer completes there, with no thread-pool hop — and the rest are handed to the thread pool in
/// groups of that size, so a large room's writes still spread over the cores. At most one group per processor waits
/// in the pool's queue at a time, and each queues the next when it is done: whatever is queued meanwhile (the store's
/// writer picking up the next publish, another room's fan-out) waits for one group, not for the whole fan-out.</para>
/// </remarks>
public static class SendBatch
{
    /// <summary>How many connections' writers End runs on its own thread; each further group of this many is one
    /// thread-pool work item.</summary>
    public const int InlineWriters = 64;

    [ThreadStatic]
    private static State? t_state;

    /// <summary>Tests: where this thread's End queues its writer groups (default: the thread pool).</summary>
    [ThreadStatic]
    internal static Action<IThreadPoolWorkItem>? t_queueForTests;

    /// <summary>Tests: the processors this thread's End plans its lanes for (0: <see cref="Environment.ProcessorCount"/>).</summary>
    [ThreadStatic]
    internal static int t_processorsForTests;

    /// <summary>Starts (or nests) a batch on the current thread.</summary>
    public static void Begin() => (t_state ??= new State()).Depth++;

    /// <summary>Ends the current thread's batch; the outermost End starts the writers of every connection sent to.</summary>
    public static void End()
    {
        State? state = t_state;
        if (state is null || state.Depth == 0)
        {
            throw new InvalidOperationException("SendBatch.End without SendBatch.Begin on this thread.");
        }

        if (--state.Depth > 0 || state.Count == 0)
        {
            return;
        }

        // Detach the held writers first: running one may send (or batch) on this thread again.
        OutboundQueue[] held = state.Held;
        int count = state.Count;
        state.Held = state.Spare ?? new OutboundQueue[held.Length];
        state.Spare = null;
        state.Count = 0;

        if (count > InlineWriters)
        {
            new WriterGroups(held[InlineWriters..count], t_queueForTests).Start(t_processorsForTests > 0 ? t_processorsForTests : Environment.ProcessorCount);
        }

        int inline = Math.Min(count, InlineWriters);
        try
        {
            for (int i = 0; i < inline; i++)
            {
                held[i].StartWriter();
            }
        }
        finally
        {
            Array.Clear(held, 0, count);
            state.Spare ??= held;
        }
    }

    /// <summary>True when the current thread is in a batch: the queue's writer is then started by End.</summary>
    internal static bool TryHold(OutboundQueue queue)
    {
        State? state = t_state;
        if (state is null || state.Depth == 0)
        {
            return false;
        }

        if (state.Count == state.Held.Length)
        {
            Array.Resize(ref state.Held, state.Held.Length * 2);
        }

        state.Held[state.Count++] = queue;
        return true;
    }

    private sealed class State
    {
        public int Depth;
        public int Count;
        public OutboundQueue[] Held = new OutboundQueue[16];
        public OutboundQueue[]? Spare;
    }

    /// <summary>
    /// The writers End does not run itself, started <see cref="InlineWriters"/> at a time by thread-pool work items: one
    /// item per lane, each starting one group and queueing itself again (at the back) while groups remain.
    /// </summary>
    internal sealed class WriterGroups(OutboundQueue[] writers, Action<IThreadPoolWorkItem>? queue = null) : IThreadPoolWorkItem
    {
        private readonly Action<IThreadPoolWorkItem> _queue = queue ?? (static item => ThreadPool.UnsafeQueueUserWorkItem(item, preferLocal: false));
        private int _next;

        /// <summary>How many groups may wait in the queue at once: one per processor, and no more than there are groups.</summary>
        public static int Lanes(int writers, int processors) => Math.Min((writers + InlineWriters - 1) / InlineWriters, Math.Max(1, processors));

        /// <summary>Queues the first group of each lane.</summary>
        public void Start(int processors)
        {
            for (int i = Lanes(writers.Length, processors); i > 0; i--)
            {
                _queue(this);
            }
        }

        public void Execute()
        {
            int start = Interlocked.Add(ref _next, InlineWriters) - InlineWriters;
            if (start >= writers.Length)
            {
                return;
            }

            int end = Math.Min(writers.Length, start + InlineWriters);
            for (int i = start; i < end; i++)
            {
                writers[i].StartWriter();
            }

            if (end < writers.Length)
            {
                _queue(this);
            }
        }
    }
}
