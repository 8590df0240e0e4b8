using Microsoft.Extensions.Time.Testing;
using Switchboard.Hub;
using Switchboard.Stores.Sqlite;

namespace Switchboard.Stores.Tests;

public sealed class SqliteCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("switchboard-checkpoint-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task The_log_is_copied_into_the_database_in_the_background_not_by_the_writer()
    {
        string path = Path.Combine(_dir, "store.db");
        var time = new FakeTimeProvider();
        await using SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path, time);
        long before = new FileInfo(path).Length;

        // ~1,000 pages of log: SQLite's own automatic checkpoint (1,000 pages) would have copied it by now.
        string text = new('x', 2000);
        for (int batch = 0; batch < 40; batch++)
        {
            await store.AppendAsync("busy", [.. Enumerable.Range(0, 50).Select(i => new NewMessage($"m{batch}-{i}", "u", "n", text, time.GetUtcNow()))]);
        }

        Assert.Equal(before, new FileInfo(path).Length); // the writer copied nothing
        Assert.Equal(0, store.Checkpoints);

        Task checkpointed = store.NextCheckpointAsync();
        time.Advance(WalCheckpointer.Interval);
        await checkpointed.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(new FileInfo(path).Length > before + (1000 * 4096), $"database file {new FileInfo(path).Length} bytes after the checkpoint");
        Assert.Equal(2000, (await store.ReadAfterAsync("busy", 0, 5000)).Count);
    }
}
