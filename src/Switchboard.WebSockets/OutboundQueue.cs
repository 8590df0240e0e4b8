using System.Buffers;
using Switchboard.Protocol;

namespace Switchboard.WebSockets;

/// <summary>
/// A connection's outbound side. Every send only enqueues and returns a <see cref="SendResult"/>: the queue is bounded
/// in bytes, and past the bound the connection's <see cref="OutboundOverflowPolicy"/> applies. One writer, scheduled on
/// the thread pool only while there is something to write, takes everything queued in one step, writes it through
/// <see cref="WebSocketProtocol.Write"/> and flushes once per batch. Sends made by the connection's own read loop (an
/// echo, a reply, a pong) are written when the read loop has decoded everything it holds: one flush per read, no hop.
/// </summary>
/// <remarks>
/// The queue is a ring under a spin lock rather than a <c>ConcurrentQueue</c>: uncontended (one room worker and the
/// read loop produce, the writer takes whole batches) the lock costs what a ConcurrentQueue's compare-and-swap does, the writer pays one lock per batch instead of one operation per frame (it copies the batch into an array
/// rented for its run), and a connection that has been idle for a heartbeat tick gives its ring back —
/// ConcurrentQueue's first segment (32 slots, ~1.6 KB) stays for the connection's life once anything was sent, which
/// every hub connection does (its welcome).
/// </remarks>
internal sealed class OutboundQueue : IThreadPoolWorkItem
{
    private const int FlushThreshold = 64 * 1024;

    [ThreadStatic]
    private static OutboundQueue? t_deferring; // set while a thread runs this connection's read loop synchronously

    private const int InitialCapacity = 4;

    private readonly WebSocketConnection _connection;

    // The ring, guarded by _gate (a spin lock: every critical section is a few stores; see Enter).
    private OutboundFrame[]? _items; // the ring: created by a send, given back when idle for a tick
    private int _head, _count;
    private bool _sentSinceTick;
    private OutboundFrame[]? _batch; // the writer's: rented for one run of the writer, returned when it goes idle
    private int _gate;

    private TransportSender? _sender; // created by the first write
    private TaskCompletionSource? _drained;
    private TaskCompletionSource? _writerDoneStorage; // created when the connection ends
    private long _queuedBytes;
    private int _writerScheduled;
    private bool _writerDeferred; // read loop only
    private volatile bool _discardData;
    private volatile bool _completeOutput;

    public OutboundQueue(WebSocketConnection connection) => _connection = connection;

    /// <summary>
    /// Takes the ring's lock. A spin lock, not a Monitor: the sections it guards are a handful of stores, so a contended
    /// taker waits nanoseconds — unless the holder was preempted, which SpinWait handles by yielding the core to it.
    /// </summary>
    private void Enter()
    {
        if (Interlocked.CompareExchange(ref _gate, 1, 0) != 0)
        {
            EnterContended();
        }
    }

    private void EnterContended()
    {
        var spin = new SpinWait();
        while (Volatile.Read(ref _gate) != 0 || Interlocked.CompareExchange(ref _gate, 1, 0) != 0)
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    private void Exit() => Volatile.Write(ref _gate, 0);

    private bool IsEmpty => Volatile.Read(ref _count) == 0;

    private void Push(OutboundFrame frame)
    {
        Enter();
        try
        {
            OutboundFrame[] items = _items ??= new OutboundFrame[InitialCapacity];
            if (_count == items.Length)
            {
                var grown = new OutboundFrame[items.Length * 2];
                for (int i = 0; i < _count; i++)
                {
                    grown[i] = items[(_head + i) % items.Length];
                }

                items = _items = grown;
                _head = 0;
            }

            items[(_head + _count) % items.Length] = frame;
            _count++;
            _sentSinceTick = true;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Moves everything queued, oldest first, into the writer's batch array (rented for this run of the writer): one
    /// lock per batch, and the ring stays where it is for the next sends.
    /// </summary>
    private int TakeAll(out OutboundFrame[] batch)
    {
        Enter();
        try
        {
            int count = _count;
            batch = _batch ?? [];
            if (count == 0)
            {
                return 0;
            }

            if (batch.Length < count)
            {
                if (_batch is not null)
                {
                    ArrayPool<OutboundFrame>.Shared.Return(_batch); // emptied as it was written
                }

                batch = _batch = ArrayPool<OutboundFrame>.Shared.Rent(Math.Max(count, 16));
            }

            OutboundFrame[] items = _items!;
            int first = Math.Min(count, items.Length - _head);
            Array.Copy(items, _head, batch, 0, first);
            Array.Copy(items, 0, batch, first, count - first);
            Array.Clear(items, _head, first);
            Array.Clear(items, 0, count - first);
            _head = 0;
            _count = 0;
            return count;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>The writer goes idle: its batch array goes back to the pool.</summary>
    private void ReturnBatch()
    {
        if (_batch is { } batch)
        {
            _batch = null;
            ArrayPool<OutboundFrame>.Shared.Return(batch);
        }
    }

    /// <summary>True while the queue holds its ring (for tests: an idle connection holds none).</summary>
    internal bool HoldsRing => Volatile.Read(ref _items) is not null;

    /// <summary>
    /// Called on every heartbeat tick: a connection that sent nothing since the last tick and has nothing queued gives its
    /// ring back, so an idle connection holds no queue at all.
    /// </summary>
    public void TrimIfIdle()
    {
        if (Volatile.Read(ref _items) is null)
        {
            return;
        }

        Enter();
        try
        {
            if (!_sentSinceTick && _count == 0)
            {
                _items = null;
            }

            _sentSinceTick = false;
        }
        finally
        {
            Exit();
        }
    }

    private TaskCompletionSource WriterDone =>
        Volatile.Read(ref _writerDoneStorage) ?? Interlocked.CompareExchange(ref _writerDoneStorage, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null) ?? _writerDoneStorage!;

    public long QueuedBytes => Volatile.Read(ref _queuedBytes);

    /// <summary>Queues a data frame, applying the byte bound.</summary>
    public SendResult Enqueue(OutboundFrame frame)
    {
        if (!_connection.Protocol.IsOpen)
        {
            frame.Release();
            return SendResult.Closed;
        }

        long total = Interlocked.Add(ref _queuedBytes, frame.Cost);
        if (total > _connection.Options.MaxOutboundQueueBytes && total != frame.Cost)
        {
            Interlocked.Add(ref _queuedBytes, -frame.Cost);
            frame.Release();
            if (_connection.Options.OverflowPolicy == OutboundOverflowPolicy.Reject)
            {
                return SendResult.QueueFull;
            }

            _connection.OnOutboundOverflow(total);
            _discardData = true;
            _connection.StartClose(WebSocketCloseCode.PolicyViolation, "Outbound queue limit exceeded");
            return SendResult.Closed;
        }

        Push(frame);
        Schedule();
        return SendResult.Enqueued;
    }

    /// <summary>Queues a control frame: never refused (pongs and close frames are bounded by the protocol).</summary>
    public void EnqueueControl(OutboundFrame frame)
    {
        Interlocked.Add(ref _queuedBytes, frame.Cost);
        Push(frame);
        Schedule();
    }

    /// <summary>Completes when the queue is empty or the connection has ended.</summary>
    public Task WhenDrainedAsync()
    {
        if (Volatile.Read(ref _queuedBytes) <= 0 || _connection.HasEnded)
        {
            return Task.CompletedTask;
        }

        TaskCompletionSource tcs = Volatile.Read(ref _drained) ?? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs = Interlocked.CompareExchange(ref _drained, tcs, null) ?? tcs;
        if (Volatile.Read(ref _queuedBytes) <= 0 || _connection.HasEnded)
        {
            SignalDrained(); // the writer may have emptied the queue before it could see the waiter
        }

        Schedule();
        return tcs.Task;
    }

    public void SignalDrained() => Interlocked.Exchange(ref _drained, null)?.TrySetResult();

    /// <summary>Marks the current thread as running this connection's read loop: its sends are written after the batch.</summary>
    public void BeginDeferring() => t_deferring = this;

    public static void EndDeferring() => t_deferring = null;

    /// <summary>Runs the writer now if the read loop deferred it.</summary>
    public void RunDeferred()
    {
        if (_writerDeferred)
        {
            _writerDeferred = false;
            _ = WriterLoopAsync(); // runs here until its first incomplete await, then carries on by itself
        }
    }

    /// <summary>The connection ends: write what is queued (the close frame), complete the output, and wait for that.</summary>
    public Task CompleteAsync()
    {
        _completeOutput = true;
        if (Interlocked.CompareExchange(ref _writerScheduled, 1, 0) == 0)
        {
            _ = WriterLoopAsync();
        }

        return WriterDone.Task;
    }

    private void Schedule()
    {
        if (Interlocked.CompareExchange(ref _writerScheduled, 1, 0) == 0)
        {
            if (t_deferring == this)
            {
                _writerDeferred = true;
                return;
            }

            if (SendBatch.TryHold(this))
            {
                return; // started when the thread's batch ends
            }

            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    void IThreadPoolWorkItem.Execute() => _ = WriterLoopAsync();

    /// <summary>Runs the writer that <see cref="SendBatch"/> held: here, until its first incomplete await.</summary>
    internal void StartWriter() => _ = WriterLoopAsync();

    private async Task WriterLoopAsync()
    {
        WebSocketProtocol protocol = _connection.Protocol;
        TransportSender sender = _sender ??= TransportSender.Create(_connection.Transport.Output, _connection.DirectSocket);
        try
        {
            while (true)
            {
                long unflushed = 0, written = 0;
                int dataFrames = 0;
                for (int count; (count = TakeAll(out OutboundFrame[] batch)) > 0;)
                {
                    for (int i = 0; i < count; i++)
                    {
                        ref OutboundFrame slot = ref batch[i];
                        OutboundFrame frame = slot;
                        slot = default;
                        Interlocked.Add(ref _queuedBytes, -frame.Cost);
                        try
                        {
                            if (_discardData && !frame.IsControl)
                            {
                                continue;
                            }

                            int n = protocol.Write(sender.Output, frame);
                            written += n;
                            unflushed += frame.Cost;
                            dataFrames += n > 0 && !frame.IsControl ? 1 : 0;
                        }
                        catch
                        {
                            ReleaseRest(batch, i + 1, count); // the rest of this batch is never written
                            throw;
                        }
                        finally
                        {
                            frame.Release();
                        }

                        if (unflushed >= FlushThreshold)
                        {
                            unflushed = 0;
                            _connection.Options.Metrics?.Sent(written, dataFrames);
                            written = 0;
                            dataFrames = 0;
                            try
                            {
                                await sender.FlushAsync().ConfigureAwait(false);
                            }
                            catch
                            {
                                ReleaseRest(batch, i + 1, count);
                                throw;
                            }
                        }
                    }
                }

                if (written > 0)
                {
                    _connection.Options.Metrics?.Sent(written, dataFrames);
                    await sender.FlushAsync().ConfigureAwait(false);
                }

                sender.Idle();
                protocol.OnFlushed();

                if (_completeOutput)
                {
                    if (!IsEmpty)
                    {
                        continue; // e.g. a close frame queued while the last flush was in progress: write it first
                    }

                    await _connection.Transport.Output.CompleteAsync().ConfigureAwait(false);
                    Drain();
                    ReturnBatch();
                    protocol.ReleaseSendResources();
                    WriterDone.TrySetResult();
                    return; // _writerScheduled stays 1: the writer never runs again
                }

                if (IsEmpty)
                {
                    SignalDrained();
                }

                ReturnBatch(); // before giving up the writer's role: the next run may start at once on another thread

                // A full fence, not Volatile.Write: the store must not be reordered after the IsEmpty load below, or a
                // sender that enqueues in between sees the writer still scheduled and nobody writes its frame.
                Interlocked.Exchange(ref _writerScheduled, 0);
                if ((IsEmpty && !_completeOutput) || Interlocked.CompareExchange(ref _writerScheduled, 1, 0) != 0)
                {
                    return;
                }
            }
        }
        catch (Exception ex)
        {
            _connection.OnWriteFailed(ex);
            try
            {
                await _connection.Transport.Output.CompleteAsync(ex).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The transport is already gone.
            }

            Drain();
            ReturnBatch();
            protocol.ReleaseSendResources();
            sender.Idle();
            _connection.Abort("Write failed: " + ex.Message);
            WriterDone.TrySetResult();
        }
    }

    private void Drain()
    {
        for (int count; (count = TakeAll(out OutboundFrame[] batch)) > 0;)
        {
            ReleaseRest(batch, 0, count);
        }
    }

    /// <summary>Releases frames <paramref name="from"/>..<paramref name="count"/> of a taken batch without writing them.</summary>
    private void ReleaseRest(OutboundFrame[] batch, int from, int count)
    {
        for (int i = from; i < count; i++)
        {
            ref OutboundFrame slot = ref batch[i];
            Interlocked.Add(ref _queuedBytes, -slot.Cost);
            slot.Release();
            slot = default;
        }
    }
}
