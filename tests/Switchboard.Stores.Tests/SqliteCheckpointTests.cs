using Microsoft.Extensions.Time.Testing;
using Switchboard.Hub;
using Switchboard.Stores.Sqlite;

namespace Switchboard.Stores.Tests;

public sealed class SqliteCheckpointTests() : TempDirectoryTests("switchboard-checkpoint-")
{
    [Fact]
    public async Task The_log_is_copied_into_the_database_in_the_background_not_by_the_writer()
    {
        string path = Path.Combine(Dir, "store.db");
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

    [Fact]
    public async Task The_writer_holds_a_batch_in_its_own_cache_and_its_statement_journals_in_memory()
    {
        await using SqliteMessageStore store = await SqliteMessageStore.OpenAsync(Path.Combine(Dir, "store.db"), new FakeTimeProvider());

        Assert.Equal(-SqliteMessageStore.WriterCacheKiB, await store.WriterPragmaAsync("cache_size")); // SQLite's default: -2000
        Assert.Equal(2, await store.WriterPragmaAsync("temp_store")); // 2: memory; the default (0) is a file in /var/tmp
    }

    [Fact]
    public async Task A_request_that_fails_fails_alone_and_the_rest_of_its_batch_commits()
    {
        string path = Path.Combine(Dir, "store.db");
        var time = new FakeTimeProvider();
        await using (SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path, time))
        {
            // A large append keeps the writer busy while the rest queue up behind it, so they run as one batch.
            string text = new('x', 100_000);
            Task busy = store.AppendAsync("busy", [.. Enumerable.Range(0, 20).Select(i => new NewMessage($"b{i}", "u", "n", text, time.GetUtcNow()))]).AsTask();
            var appends = new List<Task<IReadOnlyList<AppendResult>>>();
            for (int i = 0; i < 10; i++)
            {
                appends.Add(store.AppendAsync("a", [new NewMessage($"m{i}", "u", "n", $"t{i}", time.GetUtcNow())]).AsTask());
            }

            Task<long> broken = store.WriterPragmaAsync("no such (syntax");
            for (int i = 10; i < 20; i++)
            {
                appends.Add(store.AppendAsync("a", [new NewMessage($"m{i}", "u", "n", $"t{i}", time.GetUtcNow())]).AsTask());
            }

            await busy;
            await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() => broken);
            IReadOnlyList<AppendResult>[] results = await Task.WhenAll(appends);
            Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), results.Select(r => r.Single().Message.Offset));
            Assert.All(results, r => Assert.False(r.Single().Duplicate));
        }

        await using (SqliteMessageStore reopened = await SqliteMessageStore.OpenAsync(path, time))
        {
            Assert.Equal(20, (await reopened.OpenRoomAsync("a")).Head); // the failed request rolled back to its savepoint, nothing more
            Assert.Equal(Enumerable.Range(0, 20).Select(i => $"t{i}"), (await reopened.ReadAfterAsync("a", 0, 100)).Select(m => m.Text));
        }
    }

    [Fact]
    public async Task After_a_batch_that_fails_as_a_whole_rooms_are_what_the_database_holds()
    {
        string path = Path.Combine(Dir, "store.db");
        var time = new FakeTimeProvider();
        await using SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path, time);
        await store.AppendAsync("a", [new NewMessage("m0", "u", "n", "t0", time.GetUtcNow())]);

        // What is submitted while the writer is held makes its next batch. A request in it ends the transaction, as a
        // failed write or commit would: the whole batch fails, after appends to "a" (a cached room) and "new" (a room
        // created in the batch) have changed the writer's cache of rooms.
        var release = new TaskCompletionSource();
        await store.HoldWriterAsync(release.Task);
        Task<IReadOnlyList<AppendResult>>[] appends =
        [
            store.AppendAsync("a", [new NewMessage("m1", "u", "n", "t1", time.GetUtcNow())]).AsTask(),
            store.AppendAsync("new", [new NewMessage("n1", "u", "n", "t1", time.GetUtcNow())]).AsTask(),
        ];
        Task<long> ender = store.WriterPragmaAsync("user_version = 7; ROLLBACK");
        Task<IReadOnlyList<AppendResult>> after = store.AppendAsync("a", [new NewMessage("m2", "u", "n", "t2", time.GetUtcNow())]).AsTask();
        release.SetResult();

        await Assert.ThrowsAnyAsync<Exception>(() => ender);
        foreach (Task<IReadOnlyList<AppendResult>> failed in appends.Append(after))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => failed);
        }

        Assert.Equal(1, (await store.OpenRoomAsync("a")).Head);
        RoomState created = await store.OpenRoomAsync("new");
        Assert.Equal(0, created.Head);
        Assert.Equal(2, (await store.AppendAsync("a", [new NewMessage("m1", "u", "n", "t1", time.GetUtcNow())])).Single().Message.Offset);
        Assert.Equal(1, (await store.AppendAsync("new", [new NewMessage("n1", "u", "n", "t1", time.GetUtcNow())])).Single().Message.Offset);
        Assert.Equal(["t0", "t1"], (await store.ReadAfterAsync("a", 0, 10)).Select(m => m.Text));
        Assert.Equal(0, await store.WriterPragmaAsync("user_version"));
    }

    [Fact]
    public async Task The_writers_cache_of_rooms_stays_within_its_bound_and_rooms_read_again_are_right()
    {
        var time = new FakeTimeProvider();
        await using SqliteMessageStore store = await SqliteMessageStore.OpenAsync(Path.Combine(Dir, "store.db"), time);
        await store.AppendAsync("first", [new NewMessage("m1", "u", "n", "t1", time.GetUtcNow()), new NewMessage("m2", "u", "n", "t2", time.GetUtcNow())]);
        await store.TrimAsync("first", new RetentionPolicy(1, null), time.GetUtcNow());

        // "first" and 9,999 more fill the cache; the next new room makes it start over.
        for (int start = 0; start < SqliteMessageStore.RoomCacheLimit - 1; start += 1000)
        {
            int count = Math.Min(1000, SqliteMessageStore.RoomCacheLimit - 1 - start);
            await Task.WhenAll(Enumerable.Range(start, count).Select(i => store.OpenRoomAsync($"room-{i}").AsTask()));
        }

        Assert.Equal(SqliteMessageStore.RoomCacheLimit, store.CachedRooms);
        await Task.WhenAll(Enumerable.Range(0, 10).Select(i => store.OpenRoomAsync($"more-{i}").AsTask()));
        Assert.InRange(store.CachedRooms, 1, 10);
        RoomState first = await store.OpenRoomAsync("first"); // no longer cached: read again
        Assert.Equal((2L, 2L), (first.Head, first.First));
        Assert.Equal(3, (await store.AppendAsync("first", [new NewMessage("m3", "u", "n", "t3", time.GetUtcNow())])).Single().Message.Offset);
        Assert.True((await store.AppendAsync("first", [new NewMessage("m2", "u", "n", "again", time.GetUtcNow())])).Single().Duplicate);
    }

    [Fact]
    public async Task The_log_stays_within_its_bound_when_the_background_copy_never_runs()
    {
        // The background checkpointer's clock never moves: only the writer's own bound (16,000 pages) limits the log.
        var time = new FakeTimeProvider();
        await using SqliteMessageStore store = await SqliteMessageStore.OpenAsync(Path.Combine(Dir, "store.db"), time);
        const long Frame = 4096 + 24;
        long bound = WalCheckpointer.WriterBoundPages * Frame, batch = 0, largest = 0, written = 0;
        string text = new('x', 100_000); // ~25 pages a message
        for (int i = 0; written < bound + (16L << 20); i++)
        {
            await store.AppendAsync("big", [.. Enumerable.Range(0, 20).Select(j => new NewMessage($"m{i}-{j}", "u", "n", text, time.GetUtcNow()))]);
            written += 20 * text.Length;
            batch = Math.Max(batch, 20 * (text.Length / 4096 + 2) * Frame);
            largest = Math.Max(largest, store.LogBytes);
        }

        Assert.Equal(0, store.Checkpoints);
        Assert.True(largest > bound / 2, $"the log reached only {largest} bytes"); // the test did fill it
        Assert.True(largest <= bound + batch + 32, $"the log reached {largest} bytes; bound {bound} + one batch {batch}");
        Assert.True(store.LogBytes <= bound + batch + 32);
        Assert.Equal(20, (await store.ReadBeforeAsync("big", long.MaxValue, 20)).Count);
    }
}
