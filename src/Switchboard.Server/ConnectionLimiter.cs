using System.IO.Pipelines;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Switchboard.Server;

/// <summary>
/// Bounds the TCP connections the server holds (every one is a file descriptor), as the outermost Kestrel connection
/// middleware. Past <see cref="Limit"/> a new connection gets <c>503 Service Unavailable</c> with <c>Retry-After</c> and is
/// closed; the server logs that once per <see cref="LogInterval"/> and keeps serving the connections it has, and takes new
/// ones again as soon as some go away.
/// <para>
/// Why: a process that runs out of descriptors does not fail gracefully. Accepts fail with EMFILE, and then the runtime
/// itself cannot create a pipe and aborts the process. The default limit is therefore derived from the process's
/// descriptor limit (RLIMIT_NOFILE), less what is open at start-up and a reserve for what opens later (assemblies, the
/// store's files and pool, logs, the runtime, and the refusals in progress).
/// </para>
/// </summary>
internal sealed class ConnectionLimiter(int limit, ILogger logger, TimeProvider time, ServerMetrics metrics)
{
    /// <summary>Descriptors kept free beyond those open at start-up (assemblies loaded later, store files and pool, runtime, refusals).</summary>
    public const int Reserve = 256;

    /// <summary>Refusals answered at once at most; beyond, a new connection is closed without an answer (each holds a descriptor for a moment).</summary>
    public const int MaxRefusing = 64;

    private const string RefusalBody = "The server is at its connection limit; retry in a moment.\n";

    private static readonly byte[] Refusal = Encoding.ASCII.GetBytes(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\n" +
        $"Content-Length: {RefusalBody.Length}\r\nConnection: close\r\n\r\n{RefusalBody}");

    private int _open;
    private int _refusing;
    private long _refusedSinceReport;
    private long _lastReport = long.MinValue;

    public int Limit { get; } = limit;

    public TimeSpan LogInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Connections held now.</summary>
    public int Open => Volatile.Read(ref _open);

    public async Task HandleAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        if (Interlocked.Increment(ref _open) > Limit)
        {
            Interlocked.Decrement(ref _open);
            await RefuseAsync(connection).ConfigureAwait(false);
            return;
        }

        metrics.ConnectionOpened();
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _open);
            metrics.ConnectionClosed();
        }
    }

    private async Task RefuseAsync(ConnectionContext connection)
    {
        metrics.ConnectionRefused();
        Report();
        if (Interlocked.Increment(ref _refusing) > MaxRefusing)
        {
            Interlocked.Decrement(ref _refusing);
            connection.Abort(new ConnectionAbortedException("Connection limit reached"));
            return;
        }

        try
        {
            // Answer, then read what the client sent until it closes (at most a second): closing with its request unread
            // would reset the connection, and the client might never see the answer.
            await connection.Transport.Output.WriteAsync(Refusal).ConfigureAwait(false);
            await connection.Transport.Output.CompleteAsync().ConfigureAwait(false);
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(1), time);
            while (true)
            {
                ReadResult read = await connection.Transport.Input.ReadAsync(deadline.Token).ConfigureAwait(false);
                connection.Transport.Input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted || read.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ConnectionResetException or InvalidOperationException)
        {
            // the client went away, or kept talking: either way, done with it
        }
        finally
        {
            Interlocked.Decrement(ref _refusing);
        }
    }

    private void Report()
    {
        Interlocked.Increment(ref _refusedSinceReport);
        long now = time.GetTimestamp();
        long last = Volatile.Read(ref _lastReport);
        if (last != long.MinValue && time.GetElapsedTime(last, now) < LogInterval)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _lastReport, now, last) == last)
        {
            logger.LogWarning("Connection limit reached ({Limit} connections, Switchboard:MaxConnections): refusing new connections with 503; {Refused} refused since the last report",
                Limit, Interlocked.Exchange(ref _refusedSinceReport, 0));
        }
    }

    /// <summary>
    /// The default limit: the process's descriptor limit, less the descriptors open now and <see cref="Reserve"/>; at least
    /// 16. Where the limit cannot be read (not Linux), 10,000.
    /// </summary>
    public static int DefaultLimit()
    {
        if (!OperatingSystem.IsLinux() || getrlimit(RlimitNofile, out RLimit limits) != 0)
        {
            return 10_000;
        }

        long open = 0;
        try
        {
            open = Directory.EnumerateFileSystemEntries("/proc/self/fd").LongCount();
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        ulong soft = Math.Min(limits.Current, int.MaxValue);
        return (int)Math.Max(16, (long)soft - open - Reserve);
    }

    private const int RlimitNofile = 7; // Linux

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int getrlimit(int resource, out RLimit limits);
}
