using Microsoft.Data.Sqlite;

namespace Switchboard.Stores.Sqlite;

/// <summary>
/// Copies the write-ahead log into the database file in the background, on a connection of its own, so the writer
/// never stops to do it. Left to the writer (SQLite's automatic checkpoint, every 1,000 pages), the commit that
/// crosses the threshold also copies the log and syncs the database file before the next batch can start: with many
/// rooms, whose commits each rewrite a page or two per room, that happened every few commits. A checkpoint here runs
/// at most every <see cref="Interval"/> and only after a
/// commit; it is passive (it never waits for the writer or a reader). The writer keeps SQLite's automatic checkpoint
/// as the bound on the log's size (<see cref="WriterBoundPages"/>): if this one falls behind, the writer catches up
/// itself, and the log file is truncated back to that size afterwards.
/// </summary>
internal sealed class WalCheckpointer : IAsyncDisposable
{
    /// <summary>How often, at most, the log is copied.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(200);

    /// <summary>The writer's own automatic checkpoint: the log's bound (16,000 pages of 4 KiB, 64 MiB).</summary>
    public const int WriterBoundPages = 16_000;

    private readonly SqliteConnection _connection;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _dirty;
    private int _checkpoints;
    private TaskCompletionSource? _next; // tests: completed by the next checkpoint

    public WalCheckpointer(string connectionString, TimeProvider time)
    {
        _connection = new SqliteConnection(connectionString);
        _loop = RunAsync(time);
    }

    /// <summary>Checkpoints run so far.</summary>
    public int Checkpoints => Volatile.Read(ref _checkpoints);

    /// <summary>Completes when the next checkpoint has run.</summary>
    public Task NextCheckpointAsync() =>
        (Volatile.Read(ref _next) ?? Interlocked.CompareExchange(ref _next, new(TaskCreationOptions.RunContinuationsAsynchronously), null) ?? _next!).Task;

    /// <summary>The writer committed: the next tick copies the log.</summary>
    public void Committed() => Volatile.Write(ref _dirty, 1);

    private async Task RunAsync(TimeProvider time)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                if (Interlocked.Exchange(ref _dirty, 0) == 0)
                {
                    continue;
                }

                try
                {
                    if (_connection.State != System.Data.ConnectionState.Open)
                    {
                        _connection.Open();
                    }

                    using SqliteCommand checkpoint = _connection.CreateCommand();
                    checkpoint.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
                    checkpoint.ExecuteNonQuery();
                    Interlocked.Increment(ref _checkpoints);
                    Interlocked.Exchange(ref _next, null)?.TrySetResult();
                }
                catch (Exception ex) when (ex is SqliteException or IOException or InvalidOperationException)
                {
                    // Busy or failing: the next tick tries again, and the writer's own bound still holds.
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
