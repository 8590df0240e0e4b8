using System.Collections.Concurrent;

namespace Switchboard.Hub;

/// <summary>
/// The background work the hub starts (catch-ups, recoveries, broker publishes, presence announcements): each task is
/// tracked until it ends, so shutdown can wait for all of them instead of leaving them running against a disposed
/// store or broker.
/// </summary>
internal sealed class TaskTracker
{
    private readonly ConcurrentDictionary<Task, byte> _running = new();

    /// <summary>Tracks <paramref name="task"/> until it completes (its failure is its own to report: it is observed here).</summary>
    public void Track(Task task)
    {
        if (task.IsCompleted)
        {
            _ = task.Exception; // observed
            return;
        }

        _running.TryAdd(task, 0);
        _ = task.ContinueWith(static (t, s) =>
        {
            _ = t.Exception;
            ((ConcurrentDictionary<Task, byte>)s!).TryRemove(t, out _);
        }, _running, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>How many are running now.</summary>
    public int Count => _running.Count;

    /// <summary>Completes when every tracked task has ended, or after <paramref name="timeout"/>; true when all ended.</summary>
    public async Task<bool> WhenAllAsync(TimeSpan timeout)
    {
        try
        {
            await Task.WhenAll(_running.Keys).WaitAsync(timeout).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
        catch (Exception)
        {
            return true; // they ended (with failures each reported where it happened)
        }
    }
}
