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
/// groups of that size, so a large room's writes still spread over the cores.</para>
/// </remarks>
public static class SendBatch
{
    /// <summary>How many connections' writers End runs on its own thread; each further group of this many is one
    /// thread-pool work item.</summary>
    public const int InlineWriters = 64;

    [ThreadStatic]
    private static State? t_state;

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

        for (int start = InlineWriters; start < count; start += InlineWriters)
        {
            ThreadPool.UnsafeQueueUserWorkItem(new WriterGroup(held[start..Math.Min(count, start + InlineWriters)]), preferLocal: false);
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

    private sealed class WriterGroup(OutboundQueue[] writers) : IThreadPoolWorkItem
    {
        public void Execute()
        {
            foreach (OutboundQueue writer in writers)
            {
                writer.StartWriter();
            }
        }
    }
}
