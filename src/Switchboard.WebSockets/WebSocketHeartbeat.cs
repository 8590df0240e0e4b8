using System.Collections.Concurrent;

namespace Switchboard.WebSockets;

/// <summary>Something with deadlines checked on a <see cref="WebSocketHeartbeat"/>'s tick.</summary>
public interface IHeartbeatListener
{
    /// <summary>The heartbeat ticked; <paramref name="nowMs"/> is its clock (<see cref="WebSocketHeartbeat.NowMs"/>).</summary>
    void OnHeartbeat(long nowMs);
}

/// <summary>
/// One timer for all connections (the Kestrel way): each tick walks the registered listeners (connections, handshakes
/// in progress) and lets each check its deadlines against a shared coarse clock. No per-connection timer, no
/// per-connection task while idle.
/// </summary>
public sealed class WebSocketHeartbeat : IDisposable
{
    private readonly ConcurrentDictionary<IHeartbeatListener, byte> _listeners = new();
    private readonly ITimer _timer;
    private long _nowMs;

    /// <summary>Creates a heartbeat ticking every <paramref name="period"/> on <paramref name="timeProvider"/>.</summary>
    public WebSocketHeartbeat(TimeProvider timeProvider, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        Time = timeProvider;
        Period = period;
        _nowMs = ReadClock();
        _timer = timeProvider.CreateTimer(static s => ((WebSocketHeartbeat)s!).Tick(), this, period, period);
    }

    /// <summary>
    /// The heartbeat of connections whose options name none: system clock, one tick per second. A host that runs
    /// several servers in one process, or tests with a fake clock, give each its own.
    /// </summary>
    public static WebSocketHeartbeat Shared { get; } = new(TimeProvider.System, TimeSpan.FromSeconds(1));

    /// <summary>The clock everything on this heartbeat uses, for timeouts too short or too rare to wait for a tick.</summary>
    public TimeProvider Time { get; }

    /// <summary>The tick period; deadlines are honoured to within one period.</summary>
    public TimeSpan Period { get; }

    /// <summary>Listeners currently registered.</summary>
    public int Count => _listeners.Count;

    /// <summary>The clock as of the last tick, in milliseconds (monotonic; only differences mean anything).</summary>
    public long NowMs => Volatile.Read(ref _nowMs);

    /// <summary>Checks <paramref name="listener"/> on every tick until unregistered.</summary>
    public void Register(IHeartbeatListener listener) => _listeners.TryAdd(listener, 0);

    /// <summary>Stops checking <paramref name="listener"/>.</summary>
    public void Unregister(IHeartbeatListener listener) => _listeners.TryRemove(listener, out _);

    /// <summary>Advances the clock and checks every listener's deadlines.</summary>
    internal void Tick()
    {
        long now = ReadClock();
        Volatile.Write(ref _nowMs, now);
        foreach (var pair in _listeners)
        {
            pair.Key.OnHeartbeat(now);
        }
    }

    /// <summary>Milliseconds on this heartbeat's clock that <paramref name="when"/> (wall-clock) lies from now.</summary>
    public long ToHeartbeatMs(DateTimeOffset when) => NowMs + (long)(when - Time.GetUtcNow()).TotalMilliseconds;

    private long ReadClock() => (long)Time.GetElapsedTime(0, Time.GetTimestamp()).TotalMilliseconds;

    /// <inheritdoc />
    public void Dispose() => _timer.Dispose();
}
