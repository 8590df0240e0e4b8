using System.Diagnostics.Metrics;
using Switchboard.Hub;
using Switchboard.Stores.Sqlite;

namespace Switchboard.Server;

/// <summary>The store's own bounded resources, on a meter "Switchboard.Store" from the host's <see cref="IMeterFactory"/>.</summary>
internal static class StoreMetrics
{
    public const string MeterName = "Switchboard.Store";

    /// <summary>Observes what <paramref name="store"/> holds outside its rows (today SQLite's: its write-ahead log on disk, its writer's cache of rooms).</summary>
    public static void Observe(IMeterFactory meterFactory, IMessageStore store)
    {
        if (store is SqliteMessageStore sqlite)
        {
            meterFactory.Create(MeterName).CreateObservableGauge("switchboard_sqlite_wal_bytes", () => sqlite.LogBytes, unit: "By",
                description: "Size of the SQLite write-ahead log file (bound: copied into the database at 16,000 pages, truncated back to 64 MiB)");
            meterFactory.Create(MeterName).CreateObservableGauge("switchboard_sqlite_cached_rooms", () => sqlite.CachedRooms, unit: "{room}",
                description: $"Rooms whose state the SQLite writer keeps between batches (bound: {SqliteMessageStore.RoomCacheLimit:N0}, then it starts over)");
        }
    }
}
