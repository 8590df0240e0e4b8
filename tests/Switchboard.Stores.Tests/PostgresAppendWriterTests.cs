using Npgsql;
using Switchboard.Hub;
using Switchboard.Stores.Postgres;

namespace Switchboard.Stores.Tests;

/// <summary>The PostgreSQL store's writer: many rooms' appends in one transaction (what the contract suite cannot see).</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresAppendWriterTests(PostgresServer server)
{
    private static NewMessage Msg(string id) => new(id, "u", "n", "t" + id, DateTimeOffset.UnixEpoch);

    [Fact]
    public async Task An_append_that_fails_inside_a_shared_transaction_fails_alone()
    {
        string cs = await server.CreateDatabaseAsync();
        await using PostgresMessageStore store = await PostgresMessageStore.OpenAsync(cs);
        var release = new TaskCompletionSource();
        await store.HoldWriterAsync(release.Task);

        // Queued while the writer holds: one transaction. PostgreSQL's text cannot hold U+0000 in a room name.
        ValueTask<IReadOnlyList<AppendResult>> a = store.AppendAsync("a", [Msg("1"), Msg("2")]);
        ValueTask<IReadOnlyList<AppendResult>> bad = store.AppendAsync("bad\0room", [Msg("1")]);
        ValueTask<IReadOnlyList<AppendResult>> b = store.AppendAsync("b", [Msg("1")]);
        ValueTask<IReadOnlyList<AppendResult>> a2 = store.AppendAsync("a", [Msg("3"), Msg("1")]);
        release.SetResult();

        Assert.Equal([1L, 2L], (await a).Select(r => r.Message.Offset));
        await Assert.ThrowsAnyAsync<Exception>(async () => await bad);
        Assert.Equal([1L], (await b).Select(r => r.Message.Offset));
        Assert.Equal([(3L, false), (1L, true)], (await a2).Select(r => (r.Message.Offset, r.Duplicate)));
        Assert.Equal(["a", "b"], await store.ListRoomsAsync());
        Assert.Equal(["1", "2", "3"], (await store.ReadAfterAsync("a", 0, 10)).Select(m => m.Id));
        Assert.Equal(1, store.SplitTransactions); // they did share a transaction
    }

    [Fact]
    public async Task A_transaction_takes_appends_until_it_holds_its_bound_of_messages_and_the_next_takes_the_rest()
    {
        string cs = await server.CreateDatabaseAsync();
        await using PostgresMessageStore store = await PostgresMessageStore.OpenAsync(cs);
        int half = PostgresAppendWriter.MaxMessages / 2;
        var release = new TaskCompletionSource();
        await store.HoldWriterAsync(release.Task);
        Task<IReadOnlyList<AppendResult>>[] appends = [.. Enumerable.Range(0, 3).Select(b =>
            store.AppendAsync("r", [.. Enumerable.Range(0, half).Select(i => Msg($"{b}-{i}"))]).AsTask())];
        int before = store.Transactions;
        release.SetResult();
        await Task.WhenAll(appends);

        Assert.Equal(2, store.Transactions - before); // two appends fill the first (its bound), the third goes in the next
        Assert.Equal([1L, half + 1L, 2L * half + 1], appends.Select(a => a.Result[0].Message.Offset));
        Assert.Equal(3L * half, (await store.OpenRoomAsync("r")).Head);
    }

    [Fact]
    public async Task With_the_database_out_of_reach_a_shared_transactions_appends_all_fail_at_once()
    {
        var nothing = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        nothing.Start();
        int port = ((System.Net.IPEndPoint)nothing.LocalEndpoint).Port;
        nothing.Stop(); // a loopback port nobody listens on: every connection is refused

        await using PostgresMessageStore store = PostgresMessageStore.Unconnected($"Host=127.0.0.1;Port={port};Username=postgres;Timeout=5");
        var release = new TaskCompletionSource();
        await store.HoldWriterAsync(release.Task);
        Task<IReadOnlyList<AppendResult>>[] appends = [.. Enumerable.Range(0, 3).Select(i => store.AppendAsync($"r{i}", [Msg("1")]).AsTask())];
        release.SetResult();

        foreach (Task<IReadOnlyList<AppendResult>> append in appends)
        {
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => append);
        }

        Assert.Equal(0, store.SplitTransactions); // not one connection attempt per append after the first failed
    }

    [Fact]
    public async Task Two_servers_creating_the_same_rooms_in_opposite_orders_wait_for_each_other_without_a_deadlock()
    {
        string cs = await server.CreateDatabaseAsync();
        await using PostgresMessageStore one = await PostgresMessageStore.OpenAsync(cs);
        await using PostgresMessageStore two = await PostgresMessageStore.OpenAsync(cs);
        string[] rooms = [.. Enumerable.Range(0, 50).Select(i => $"room-{i:D2}")];
        await using NpgsqlDataSource data = NpgsqlDataSource.Create(cs);

        // A third session holds room-25's creation open, so that both servers' transactions are inside their room
        // creation at once: in the name order both take, server two waits at room-00 for server one; in the order they
        // were queued, each would hold half the rooms the other needs.
        await using NpgsqlConnection blocker = await data.OpenConnectionAsync();
        await using NpgsqlTransaction blocking = await blocker.BeginTransactionAsync();
        await using (NpgsqlCommand insert = new("INSERT INTO switchboard_rooms VALUES ('room-25', 'e', 0, 1)", blocker, blocking))
        {
            await insert.ExecuteNonQueryAsync();
        }

        var release = new TaskCompletionSource();
        await one.HoldWriterAsync(release.Task);
        await two.HoldWriterAsync(release.Task);
        var appends = new List<Task<IReadOnlyList<AppendResult>>>();
        appends.AddRange(rooms.Select(r => one.AppendAsync(r, [Msg("one")]).AsTask()));
        appends.AddRange(rooms.Reverse().Select(r => two.AppendAsync(r, [Msg("two")]).AsTask()));
        release.SetResult();

        await using (NpgsqlCommand waiting = data.CreateCommand(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((long)(await waiting.ExecuteScalarAsync())! < 2)
            {
                Assert.True(DateTime.UtcNow < deadline, "the two servers' transactions never both waited");
                await Task.Delay(10); // polling PostgreSQL's view of the sessions: nothing to wait on instead
            }
        }

        await blocking.RollbackAsync();
        await Task.WhenAll(appends);
        Assert.Equal((0, 0), (one.SplitTransactions, two.SplitTransactions)); // a deadlock would have failed one transaction
        foreach (string room in rooms)
        {
            Assert.Equal([1L, 2L], (await one.ReadAfterAsync(room, 0, 10)).Select(m => m.Offset));
        }
    }
}
