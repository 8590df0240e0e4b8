using System.Collections.Concurrent;

namespace Switchboard.WebSockets;

/// <summary>
/// One timer for all connections (the Kestrel way): each tick walks the registered connections and lets
/// each check its keepalive and closing-handshake deadlines against a shared coarse clock. No per-connection
/// timer, no per-connection task while idle.
/// </summary>
public sealed class WebSocketHeartbeat : IDisposable
{
    private readonly ConcurrentDictionary<WebSocketConnection, byte> _connections = new();
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private long _nowMs;

    /// <summary>Creates a heartbeat ticking every <paramref name="period"/> on <paramref name="timeProvider"/>.</summary>
    public WebSocketHeartbeat(TimeProvider timeProvider, TimeSpan period)
    {
        _time = timeProvider;
        Period = period;
        _nowMs = ReadClock();
        _timer = timeProvider.CreateTimer(static s => ((WebSocketHeartbeat)s!).Tick(), this, period, period);
    }

    /// <summary>The process-wide heartbeat: system clock, one tick per second.</summary>
    public static WebSocketHeartbeat Shared { get; } = new(TimeProvider.System, TimeSpan.FromSeconds(1));

    /// <summary>The tick period; deadlines are honoured to within one period.</summary>
    public TimeSpan Period { get; }

    /// <summary>Connections currently registered.</summary>
    public int Count => _connections.Count;

    /// <summary>The clock as of the last tick, in milliseconds.</summary>
    internal long NowMs => Volatile.Read(ref _nowMs);

    internal void Register(WebSocketConnection connection) => _connections.TryAdd(connection, 0);

    internal void Unregister(WebSocketConnection connection) => _connections.TryRemove(connection, out _);

    /// <summary>Advances the clock and checks every connection's deadlines.</summary>
    internal void Tick()
    {
        long now = ReadClock();
        Volatile.Write(ref _nowMs, now);
        foreach (var pair in _connections)
        {
            pair.Key.OnHeartbeat(now);
        }
    }

    private long ReadClock() => (long)_time.GetElapsedTime(0, _time.GetTimestamp()).TotalMilliseconds;

    /// <inheritdoc />
    public void Dispose() => _timer.Dispose();
}
