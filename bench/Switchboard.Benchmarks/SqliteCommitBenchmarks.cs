using BenchmarkDotNet.Attributes;
using Switchboard.Hub;
using Switchboard.Stores.Sqlite;

namespace Switchboard.Benchmarks;

/// <summary>
/// One durable append (one commit, its fsync included) to a store that has seen <see cref="RoomsSeen"/> rooms since it
/// opened: what a commit costs should not grow with the rooms the writer keeps in its cache.
/// </summary>
public class SqliteCommitBenchmarks
{
    private string _dir = null!;
    private SqliteMessageStore _store = null!;
    private long _next;

    [Params(100, 10_000)]
    public int RoomsSeen { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        _dir = Directory.CreateTempSubdirectory("switchboard-commit-").FullName;
        _store = await SqliteMessageStore.OpenAsync(Path.Combine(_dir, "store.db"));
        await Task.WhenAll(Enumerable.Range(0, RoomsSeen).Select(i => _store.OpenRoomAsync($"room-{i}").AsTask()));
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _store.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark]
    public async Task<long> Append()
    {
        long n = ++_next;
        IReadOnlyList<AppendResult> r = await _store.AppendAsync("room-0", [new NewMessage($"m{n}", "u", "Ann", "hello", DateTimeOffset.UnixEpoch)]);
        return r[0].Message.Offset;
    }
}
