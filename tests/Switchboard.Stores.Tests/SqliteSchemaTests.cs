using Microsoft.Data.Sqlite;
using Switchboard.Hub;
using Switchboard.Stores.Sqlite;

namespace Switchboard.Stores.Tests;

public sealed class SqliteSchemaTests() : TempDirectoryTests("switchboard-schema-")
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Messages_are_keyed_by_an_integer_of_room_number_and_offset_and_retries_by_id_first()
    {
        string path = Path.Combine(Dir, "store.db");
        await using (SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path))
        {
            await store.AppendAsync("a", [new NewMessage("1", "u", "n", "t", T0), new NewMessage("2", "u", "n", "t", T0)]);
            await store.AppendAsync("b", [new NewMessage("1", "u", "n", "t", T0)]);
        }

        // A table with row ids (its interior pages hold keys, not rows), whose row id is the key.
        Assert.Equal(0L, await ScalarAsync(path, "SELECT wr FROM pragma_table_list WHERE name = 'messages'"));
        Assert.Equal("k", await ScalarAsync(path, "SELECT name FROM pragma_table_info('messages') WHERE pk = 1 AND type = 'INTEGER'"));
        Assert.Equal(["id", "room", "user_id"], await ColumnsAsync(path, "SELECT name FROM pragma_index_info('messages_by_id') ORDER BY seqno"));
        Assert.Empty(await ColumnsAsync(path, "SELECT name FROM pragma_index_info('messages_idempotency')"));
        Assert.Equal(["1:a:1", "1:a:2", "2:b:1"], await ColumnsAsync(path,
            "SELECT (m.k >> 40) || ':' || r.name || ':' || (m.k & 1099511627775) FROM messages m JOIN rooms r ON r.rid = m.room ORDER BY m.k"));
    }

    public static TheoryData<string> EarlierRetryIndexes => new()
    {
        "CREATE UNIQUE INDEX messages_idempotency ON messages (room, user_id, id);",
        "CREATE UNIQUE INDEX messages_by_id ON messages (id, room, user_id);",
    };

    [Theory]
    [MemberData(nameof(EarlierRetryIndexes))]
    public async Task A_database_of_the_earlier_layout_is_rewritten_keeping_every_message_state_and_retry(string retryIndex)
    {
        string path = Path.Combine(Dir, "old.db");
        await ExecAsync(path, $"""
            CREATE TABLE rooms (name TEXT PRIMARY KEY, epoch TEXT NOT NULL, head INTEGER NOT NULL, first INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE messages (room TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL,
                name TEXT NOT NULL, text TEXT NOT NULL, time_ms INTEGER NOT NULL, PRIMARY KEY (room, seq)) WITHOUT ROWID;
            {retryIndex}
            INSERT INTO rooms VALUES ('r', 'e1', 3, 2), ('q', 'e2', 1, 1), ('empty', 'e3', 0, 1);
            INSERT INTO messages VALUES ('r', 2, 'm2', 'u', 'Ann', 'second', 2000), ('r', 3, 'm3', 'u', 'Ann', 'third', 3000),
                ('q', 1, 'm2', 'u', 'Bob', 'in q', 4000);
            """);

        await using (SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path))
        {
            Assert.Equal(new RoomState("e1", 3, 2), await store.OpenRoomAsync("r"));
            Assert.Equal(new RoomState("e2", 1, 1), await store.OpenRoomAsync("q"));
            Assert.Equal(new RoomState("e3", 0, 1), await store.OpenRoomAsync("empty"));
            Assert.Equal(["empty", "q", "r"], await store.ListRoomsAsync());
            Assert.Equal([
                new StoredMessage(2, "m2", "u", "Ann", "second", DateTimeOffset.FromUnixTimeMilliseconds(2000)),
                new StoredMessage(3, "m3", "u", "Ann", "third", DateTimeOffset.FromUnixTimeMilliseconds(3000))],
                await store.ReadAfterAsync("r", 0, 10));
            Assert.Equal(["in q"], (await store.ReadBeforeAsync("q", long.MaxValue, 10)).Select(m => m.Text));

            IReadOnlyList<AppendResult> results = await store.AppendAsync("r", [
                new NewMessage("m2", "u", "Ann", "retried", T0),
                new NewMessage("m2", "v", "Bob", "another user's id", T0),
                new NewMessage("m4", "u", "Ann", "fourth", T0)]);
            Assert.Equal([(2L, true, "second"), (4L, false, "another user's id"), (5L, false, "fourth")],
                results.Select(r => (r.Message.Offset, r.Duplicate, r.Message.Text)));
            Assert.Equal(1, (await store.AppendAsync("empty", [new NewMessage("x", "u", "n", "t", T0)]))[0].Message.Offset);
            Assert.Equal(1, (await store.AppendAsync("new", [new NewMessage("x", "u", "n", "t", T0)]))[0].Message.Offset);
        }

        Assert.Equal(["messages", "messages_by_id", "rooms", "sqlite_autoindex_rooms_2"], // the earlier tables and indexes are gone
            await ColumnsAsync(path, "SELECT name FROM sqlite_master ORDER BY name"));
    }

    [Fact]
    public async Task An_upgrade_that_would_drop_a_message_is_refused_and_changes_nothing()
    {
        string path = Path.Combine(Dir, "orphan.db");
        await ExecAsync(path, """
            CREATE TABLE rooms (name TEXT PRIMARY KEY, epoch TEXT NOT NULL, head INTEGER NOT NULL, first INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE messages (room TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL,
                name TEXT NOT NULL, text TEXT NOT NULL, time_ms INTEGER NOT NULL, PRIMARY KEY (room, seq)) WITHOUT ROWID;
            INSERT INTO rooms VALUES ('r', 'e1', 1, 1);
            INSERT INTO messages VALUES ('r', 1, 'm1', 'u', 'Ann', 'kept', 1000), ('no such room', 1, 'm1', 'u', 'Ann', 'orphan', 1000);
            """);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => SqliteMessageStore.OpenAsync(path));
        Assert.Contains("1 of its 2 messages", error.Message, StringComparison.Ordinal);
        Assert.Equal(["kept", "orphan"], await ColumnsAsync(path, "SELECT text FROM messages ORDER BY text"));
        Assert.Equal(0L, await ScalarAsync(path, "SELECT COUNT(*) FROM pragma_table_info('rooms') WHERE name = 'rid'"));
    }

    [Fact]
    public async Task A_room_whose_offsets_would_leave_its_key_range_refuses_the_append_and_keeps_the_rest()
    {
        string path = Path.Combine(Dir, "full.db");
        await using (SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path))
        {
            await store.AppendAsync("a", [new NewMessage("1", "u", "n", "t", T0)]);
            await store.AppendAsync("b", [new NewMessage("1", "u", "n", "t", T0)]);
        }

        await ExecAsync(path, $"UPDATE rooms SET head = {SqliteSchema.MaxOffset - 1} WHERE name = 'a'");
        await using (SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path))
        {
            Assert.Equal(SqliteSchema.MaxOffset, (await store.AppendAsync("a", [new NewMessage("2", "u", "n", "t", T0)]))[0].Message.Offset);
            var error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await store.AppendAsync("a", [new NewMessage("3", "u", "n", "t", T0)]));
            Assert.Contains("is full", error.Message, StringComparison.Ordinal);
            Assert.Equal(SqliteSchema.MaxOffset, (await store.OpenRoomAsync("a")).Head);
            Assert.Equal(["1"], (await store.ReadAfterAsync("b", long.MinValue, 10)).Select(m => m.Id)); // room b's range is untouched
            Assert.Equal(2, (await store.AppendAsync("b", [new NewMessage("2", "u", "n", "t", T0)]))[0].Message.Offset);
        }
    }

    [Fact]
    public async Task Rooms_past_the_last_number_are_refused_and_the_numbered_ones_keep_working()
    {
        string path = Path.Combine(Dir, "rooms.db");
        await using (SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path))
        {
            await store.AppendAsync("a", [new NewMessage("1", "u", "n", "t", T0)]);
        }

        await ExecAsync(path, $"UPDATE rooms SET rid = {SqliteSchema.MaxRoomId} WHERE name = 'a'; UPDATE messages SET k = {SqliteSchema.Key(SqliteSchema.MaxRoomId, 1)}");
        await using (SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path))
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await store.OpenRoomAsync("b"));
            Assert.Contains("most rooms", error.Message, StringComparison.Ordinal);
            Assert.Equal(["a"], await store.ListRoomsAsync());
            Assert.Equal(2, (await store.AppendAsync("a", [new NewMessage("2", "u", "n", "t", T0)]))[0].Message.Offset);
            Assert.Equal(["1", "2"], (await store.ReadAfterAsync("a", 0, 10)).Select(m => m.Id)); // the range's end is a valid key too
            Assert.Equal(["1", "2"], (await store.ReadBeforeAsync("a", long.MaxValue, 10)).Select(m => m.Id));
            await store.TrimAsync("a", new RetentionPolicy(1, null), T0);
            Assert.Equal(["2"], (await store.ReadAfterAsync("a", 0, 10)).Select(m => m.Id));
            Assert.Equal(1, (await store.ResetAsync("a")).First);
            Assert.Empty(await store.ReadAfterAsync("a", 0, 10));
        }
    }

    private static async Task ExecAsync(string path, string sql)
    {
        await using var c = new SqliteConnection($"Data Source={path};Pooling=False");
        await c.OpenAsync();
        using SqliteCommand cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<object?> ScalarAsync(string path, string sql)
    {
        await using var c = new SqliteConnection($"Data Source={path};Pooling=False");
        await c.OpenAsync();
        using SqliteCommand cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return await cmd.ExecuteScalarAsync();
    }

    private static async Task<List<string>> ColumnsAsync(string path, string sql)
    {
        await using var c = new SqliteConnection($"Data Source={path};Pooling=False");
        await c.OpenAsync();
        using SqliteCommand cmd = c.CreateCommand();
        cmd.CommandText = sql;
        var values = new List<string>();
        using SqliteDataReader r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            values.Add(r.GetString(0));
        }

        return values;
    }
}
