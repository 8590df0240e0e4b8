using System.Diagnostics.Metrics;

namespace Switchboard.Hub;

/// <summary>
/// One hub's counters and store latency histogram, on a meter "Switchboard.Hub" created by the host's
/// <see cref="IMeterFactory"/> (two hubs in one process count apart). The hot path only does an interlocked add; the
/// observable instruments read the totals when a collector asks.
/// </summary>
public sealed class HubMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Switchboard.Hub";

    private readonly bool _ownsMeter;
    private readonly Histogram<double> _storeLatency;
    private long _inFlight, _backpressure, _roomsRefused, _readPauses, _holes, _holeFills, _tails;
    private Func<int>? _knownRooms;

    // Per room kind (index: RoomKind), reported with a room_kind tag.
    private readonly long[] _rooms = new long[KindCount], _stored = new long[KindCount], _duplicates = new long[KindCount],
        _deliveries = new long[KindCount], _lagging = new long[KindCount], _resets = new long[KindCount];

    private const int KindCount = 3;

    private static readonly KeyValuePair<string, object?>[] KindTags =
        [.. Enum.GetValues<RoomKind>().Select(k => new KeyValuePair<string, object?>("room_kind", k.TagValue()))];

    /// <summary>One measurement per room kind, each with its room_kind tag (every kind, zero included: a dashboard sees them all from the start).</summary>
    private static Measurement<long>[] ByKind(long[] values)
    {
        var measurements = new Measurement<long>[KindCount];
        for (int k = 0; k < KindCount; k++)
        {
            measurements[k] = new Measurement<long>(Volatile.Read(ref values[k]), KindTags[k]);
        }

        return measurements;
    }

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/> (or a meter of its own when null).</summary>
    public HubMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        Meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _storeLatency = Meter.CreateHistogram<double>("switchboard_store_append_seconds", "s", "Time to durably store one batch of published messages");
        Meter.CreateObservableGauge("switchboard_rooms", () => ByKind(_rooms), description: "Rooms open in memory");
        Meter.CreateObservableCounter("switchboard_hub_messages_in_total", () => ByKind(_stored), description: "Messages published and stored");
        Meter.CreateObservableCounter("switchboard_hub_duplicates_total", () => ByKind(_duplicates), description: "Publishes recognised as retries of a stored message");
        Meter.CreateObservableCounter("switchboard_hub_messages_out_total", () => ByKind(_deliveries), description: "Messages delivered to room members");
        Meter.CreateObservableGauge("switchboard_publishes_in_flight", () => Volatile.Read(ref _inFlight), description: "Publishes accepted and not yet answered, all connections");
        Meter.CreateObservableCounter("switchboard_publish_backpressure_total", () => Volatile.Read(ref _backpressure), description: "Times a connection's publish window was full and the server stopped reading from it");
        Meter.CreateObservableCounter("switchboard_broker_holes_total", () => Volatile.Read(ref _holes), description: "Messages that arrived past a hole in a room's offsets (another node's message not here yet)");
        Meter.CreateObservableCounter("switchboard_broker_holes_filled_total", () => Volatile.Read(ref _holeFills), description: "Messages read from the store to fill holes the broker left");
        Meter.CreateObservableCounter("switchboard_broker_tail_recoveries_total", () => Volatile.Read(ref _tails), description: "Head checks that found committed messages the broker never brought");
        Meter.CreateObservableCounter("switchboard_history_resets_total", () => ByKind(_resets), description: "Room histories deleted and started over in a new epoch, as applied by this server's open rooms");
        Meter.CreateObservableCounter("switchboard_read_pauses_total", () => Volatile.Read(ref _readPauses), description: "Times the server stopped reading a connection's commands until its replies had gone out");
        Meter.CreateObservableCounter("switchboard_room_creations_refused_total", () => Volatile.Read(ref _roomsRefused), description: "New rooms refused because a connection or the server created too many, or the server holds its limit of rooms");
        Meter.CreateObservableGauge("switchboard_rooms_known", () => _knownRooms?.Invoke() ?? 0, description: "Rooms the server knows: with a history, configured, or created (bound: Hub:MaxRooms)");
        Meter.CreateObservableCounter("switchboard_slow_consumer_recoveries_total", () => ByKind(_lagging), description: "Members taken off a live stream because they fell behind, then replayed from history");
    }

    /// <summary>The meter.</summary>
    public Meter Meter { get; }

    /// <summary>Rooms open in memory now.</summary>
    public long Rooms
    {
        get
        {
            long open = 0;
            for (int k = 0; k < KindCount; k++)
            {
                open += Volatile.Read(ref _rooms[k]);
            }

            return open;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsMeter)
        {
            Meter.Dispose(); // a factory's meters are disposed with the factory
        }
    }

    internal void RoomOpened(RoomKind kind) => Interlocked.Increment(ref _rooms[(int)kind]);

    internal void RoomClosed(RoomKind kind) => Interlocked.Decrement(ref _rooms[(int)kind]);

    internal void Stored(RoomKind kind, int count, int duplicates, double seconds)
    {
        Interlocked.Add(ref _stored[(int)kind], count);
        Interlocked.Add(ref _duplicates[(int)kind], duplicates);
        _storeLatency.Record(seconds); // the store's latency: one series, whatever the room
    }

    internal void Delivered(RoomKind kind, int count) => Interlocked.Add(ref _deliveries[(int)kind], count);

    internal void Lagging(RoomKind kind) => Interlocked.Increment(ref _lagging[(int)kind]);

    internal void PublishEntered() => Interlocked.Increment(ref _inFlight);

    internal void PublishExited() => Interlocked.Decrement(ref _inFlight);

    internal void PublishBackpressure() => Interlocked.Increment(ref _backpressure);

    internal void HoleDetected() => Interlocked.Increment(ref _holes);

    internal void HoleFilled(int messages) => Interlocked.Add(ref _holeFills, messages);

    internal void TailRecovered() => Interlocked.Increment(ref _tails);

    internal void HistoryReset(RoomKind kind) => Interlocked.Increment(ref _resets[(int)kind]);

    internal void ReadPaused() => Interlocked.Increment(ref _readPauses);

    internal void RoomCreationRefused() => Interlocked.Increment(ref _roomsRefused);

    /// <summary>Where <c>switchboard_rooms_known</c> reads its count (the hub that uses these metrics).</summary>
    internal void ObserveKnownRooms(Func<int> count) => _knownRooms = count;
}
