using System.Collections.Concurrent;
using Switchboard.Protocol;

namespace Switchboard.WebSockets;

/// <summary>
/// A connection's outbound side. Every send only enqueues (lock-free) and returns a <see cref="SendResult"/>: the queue
/// is bounded in bytes, and past the bound the connection's <see cref="OutboundOverflowPolicy"/> applies. One writer,
/// scheduled on the thread pool only while there is something to write, drains everything queued through
/// <see cref="WebSocketProtocol.Write"/> and flushes once per batch. Sends made by the connection's own read loop (an
/// echo, a reply, a pong) are written when the read loop has decoded everything it holds: one flush per read, no hop.
/// </summary>
internal sealed class OutboundQueue : IThreadPoolWorkItem
{
    private const int FlushThreshold = 64 * 1024;

    [ThreadStatic]
    private static OutboundQueue? t_deferring; // set while a thread runs this connection's read loop synchronously

    private readonly WebSocketConnection _connection;
    private ConcurrentQueue<OutboundFrame>? _queueStorage; // created on the first send: an idle connection holds none
    private TransportSender? _sender; // created by the first write
    private TaskCompletionSource? _drained;
    private TaskCompletionSource? _writerDoneStorage; // created when the connection ends
    private long _queuedBytes;
    private int _writerScheduled;
    private bool _writerDeferred; // read loop only
    private volatile bool _discardData;
    private volatile bool _completeOutput;

    public OutboundQueue(WebSocketConnection connection) => _connection = connection;

    private ConcurrentQueue<OutboundFrame> Queue =>
        Volatile.Read(ref _queueStorage) ?? Interlocked.CompareExchange(ref _queueStorage, new ConcurrentQueue<OutboundFrame>(), null) ?? _queueStorage!;

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

        Queue.Enqueue(frame);
        Schedule();
        return SendResult.Enqueued;
    }

    /// <summary>Queues a control frame: never refused (pongs and close frames are bounded by the protocol).</summary>
    public void EnqueueControl(OutboundFrame frame)
    {
        Interlocked.Add(ref _queuedBytes, frame.Cost);
        Queue.Enqueue(frame);
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

            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    void IThreadPoolWorkItem.Execute() => _ = WriterLoopAsync();

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
                while (Queue.TryDequeue(out OutboundFrame frame))
                {
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
                        await sender.FlushAsync().ConfigureAwait(false);
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
                    if (!Queue.IsEmpty)
                    {
                        continue; // e.g. a close frame queued while the last flush was in progress: write it first
                    }

                    await _connection.Transport.Output.CompleteAsync().ConfigureAwait(false);
                    Drain();
                    protocol.ReleaseSendResources();
                    WriterDone.TrySetResult();
                    return; // _writerScheduled stays 1: the writer never runs again
                }

                if (Queue.IsEmpty)
                {
                    SignalDrained();
                }

                // A full fence, not Volatile.Write: the store must not be reordered after the IsEmpty load below, or a
                // sender that enqueues in between sees the writer still scheduled and nobody writes its frame.
                Interlocked.Exchange(ref _writerScheduled, 0);
                if ((Queue.IsEmpty && !_completeOutput) || Interlocked.CompareExchange(ref _writerScheduled, 1, 0) != 0)
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
            protocol.ReleaseSendResources();
            sender.Idle();
            _connection.Abort("Write failed: " + ex.Message);
            WriterDone.TrySetResult();
        }
    }

    private void Drain()
    {
        while (Queue.TryDequeue(out OutboundFrame frame))
        {
            Interlocked.Add(ref _queuedBytes, -frame.Cost);
            frame.Release();
        }
    }
}
