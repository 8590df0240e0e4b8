using System.Diagnostics.Metrics;

namespace Switchboard.Hub;

/// <summary>Hub counters and the store latency histogram, on the meter "Switchboard.Hub".</summary>
public static class HubMetrics
{
    private static long s_rooms, s_stored, s_duplicates, s_deliveries, s_lagging, s_inFlight, s_backpressure, s_roomsRefused, s_readPauses, s_holes, s_holeFills, s_tails;

    /// <summary>The meter.</summary>
    public static Meter Meter { get; } = new("Switchboard.Hub");

    private static readonly Histogram<double> StoreLatency = Meter.CreateHistogram<double>(
        "switchboard_store_append_seconds", "s", "Time to durably store one batch of published messages");

    static HubMetrics()
    {
        Meter.CreateObservableGauge("switchboard_rooms", () => Volatile.Read(ref s_rooms), description: "Rooms open in memory");
        Meter.CreateObservableCounter("switchboard_hub_messages_in_total", () => Volatile.Read(ref s_stored), description: "Messages published and stored");
        Meter.CreateObservableCounter("switchboard_hub_duplicates_total", () => Volatile.Read(ref s_duplicates), description: "Publishes recognised as retries of a stored message");
        Meter.CreateObservableCounter("switchboard_hub_messages_out_total", () => Volatile.Read(ref s_deliveries), description: "Messages delivered to room members");
        Meter.CreateObservableGauge("switchboard_publishes_in_flight", () => Volatile.Read(ref s_inFlight), description: "Publishes accepted and not yet answered, all connections");
        Meter.CreateObservableCounter("switchboard_publish_backpressure_total", () => Volatile.Read(ref s_backpressure), description: "Times a connection's publish window was full and the server stopped reading from it");
        Meter.CreateObservableCounter("switchboard_broker_holes_total", () => Volatile.Read(ref s_holes), description: "Messages that arrived past a hole in a room's offsets (another node's message not here yet)");
        Meter.CreateObservableCounter("switchboard_broker_holes_filled_total", () => Volatile.Read(ref s_holeFills), description: "Messages read from the store to fill holes the broker left");
        Meter.CreateObservableCounter("switchboard_broker_tail_recoveries_total", () => Volatile.Read(ref s_tails), description: "Head checks that found committed messages the broker never brought");
        Meter.CreateObservableCounter("switchboard_read_pauses_total", () => Volatile.Read(ref s_readPauses), description: "Times the server stopped reading a connection's commands until its replies had gone out");
        Meter.CreateObservableCounter("switchboard_room_creations_refused_total", () => Volatile.Read(ref s_roomsRefused), description: "New rooms refused because a connection or the server created too many");
        Meter.CreateObservableCounter("switchboard_slow_consumer_recoveries_total", () => Volatile.Read(ref s_lagging), description: "Members taken off a live stream because they fell behind, then replayed from history");
    }

    internal static void RoomOpened() => Interlocked.Increment(ref s_rooms);

    internal static void RoomClosed() => Interlocked.Decrement(ref s_rooms);

    internal static void Stored(int count, int duplicates, double seconds)
    {
        Interlocked.Add(ref s_stored, count);
        Interlocked.Add(ref s_duplicates, duplicates);
        StoreLatency.Record(seconds);
    }

    internal static void Delivered(int count) => Interlocked.Add(ref s_deliveries, count);

    internal static void Lagging() => Interlocked.Increment(ref s_lagging);

    internal static void PublishEntered() => Interlocked.Increment(ref s_inFlight);

    internal static void PublishExited() => Interlocked.Decrement(ref s_inFlight);

    internal static void PublishBackpressure() => Interlocked.Increment(ref s_backpressure);

    internal static void HoleDetected() => Interlocked.Increment(ref s_holes);

    internal static void HoleFilled(int messages) => Interlocked.Add(ref s_holeFills, messages);

    internal static void TailRecovered() => Interlocked.Increment(ref s_tails);

    internal static void ReadPaused() => Interlocked.Increment(ref s_readPauses);

    internal static void RoomCreationRefused() => Interlocked.Increment(ref s_roomsRefused);
}
