namespace Switchboard.Hub;

/// <summary>
/// One connection's publishes in flight: accepted, not yet answered (stored and acked, or failed). When the window is
/// full — <see cref="HubOptions.MaxPendingPublishes"/> publishes or <see cref="HubOptions.MaxPendingPublishBytes"/> of
/// text — the connection's handler waits in <see cref="WhenOpenAsync"/> before it returns, so the engine stops reading
/// from that connection and TCP pushes back on the sender (as Kafka's and NATS's servers do). Whatever a client sends,
/// the server holds at most one window of its publishes, and a room's queue at most one window per connection.
/// </summary>
public sealed class PublishWindow(HubOptions options, HubMetrics metrics)
{
    private readonly Lock _lock = new();
    private int _count;
    private long _bytes;
    private TaskCompletionSource? _waiter;

    /// <summary>Counts a publish of <paramref name="bytes"/> bytes of text as in flight (call before handing it to the room).</summary>
    public void Enter(long bytes)
    {
        lock (_lock)
        {
            _count++;
            _bytes += bytes;
        }

        metrics.PublishEntered();
    }

    /// <summary>The publish entered with <paramref name="bytes"/> was answered; wakes the reader if the window opened.</summary>
    public void Exit(long bytes)
    {
        TaskCompletionSource? wake = null;
        lock (_lock)
        {
            _count--;
            _bytes -= bytes;
            if (_waiter is not null && IsOpen)
            {
                wake = _waiter;
                _waiter = null;
            }
        }

        metrics.PublishExited();
        wake?.TrySetResult();
    }

    private bool IsOpen => _count < options.MaxPendingPublishes && _bytes < options.MaxPendingPublishBytes;

    /// <summary>Completes at once while the window has room; else when enough publishes were answered (the caller stops reading meanwhile).</summary>
    public ValueTask WhenOpenAsync()
    {
        lock (_lock)
        {
            if (IsOpen)
            {
                return ValueTask.CompletedTask;
            }

            _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            metrics.PublishBackpressure();
            return new ValueTask(_waiter.Task);
        }
    }
}
