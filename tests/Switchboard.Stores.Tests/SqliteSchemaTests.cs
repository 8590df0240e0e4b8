using Microsoft.Data.Sqlite;
using Switchboard.Hub;
using Switchboard.Stores.Sqlite;

namespace Switchboard.Stores.Tests;

public sealed class SqliteSchemaTests() : TempDirectoryTests("switchboard-schema-")
{
    [Fact]
    public async Task The_idempotency_index_leads_with_the_message_id_so_a_commit_appends_at_its_end()
    {
        string path = Path.Combine(Dir, "store.db");
        await using (SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path))
        {
            await store.AppendAsync("r", [new NewMessage("a", "u", "n", "t", DateTimeOffset.UnixEpoch)]);
        }

        Assert.Equal(["id", "room", "user_id"], await IndexColumnsAsync(path, "messages_by_id"));
        Assert.Empty(await IndexColumnsAsync(path, "messages_idempotency"));
    }

    [Fact]
    public async Task A_database_made_with_the_room_first_index_opens_with_the_new_one_and_still_recognises_retries()
    {
        string path = Path.Combine(Dir, "old.db");
        await using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await c.OpenAsync();
            using SqliteCommand cmd = c.CreateCommand();
            cmd.CommandText = """
                CREATE TABLE rooms (name TEXT PRIMARY KEY, epoch TEXT NOT NULL, head INTEGER NOT NULL, first INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE messages (room TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL,
                    name TEXT NOT NULL, text TEXT NOT NULL, time_ms INTEGER NOT NULL, PRIMARY KEY (room, seq)) WITHOUT ROWID;
                CREATE UNIQUE INDEX messages_idempotency ON messages (room, user_id, id);
                INSERT INTO rooms VALUES ('r', 'e1', 2, 1);
                INSERT INTO messages VALUES ('r', 1, 'm1', 'u', 'Ann', 'first', 1000), ('r', 2, 'm2', 'u', 'Ann', 'second', 2000);
                """;
            await cmd.ExecuteNonQueryAsync();
        }

        await using (SqliteMessageStore store = await SqliteMessageStore.OpenAsync(path))
        {
            IReadOnlyList<AppendResult> results = await store.AppendAsync("r", [
                new NewMessage("m2", "u", "Ann", "retried", DateTimeOffset.UnixEpoch),
                new NewMessage("m2", "v", "Bob", "another user's id", DateTimeOffset.UnixEpoch),
                new NewMessage("m3", "u", "Ann", "third", DateTimeOffset.UnixEpoch)]);

            Assert.Equal([(2L, true, "second"), (3L, false, "another user's id"), (4L, false, "third")],
                results.Select(r => (r.Message.Offset, r.Duplicate, r.Message.Text)));
        }

        Assert.Equal(["id", "room", "user_id"], await IndexColumnsAsync(path, "messages_by_id"));
        Assert.Empty(await IndexColumnsAsync(path, "messages_idempotency"));
    }

    private static async Task<List<string>> IndexColumnsAsync(string path, string index)
    {
        await using var c = new SqliteConnection($"Data Source={path};Pooling=False");
        await c.OpenAsync();
        using SqliteCommand cmd = c.CreateCommand();
        cmd.CommandText = "SELECT name FROM pragma_index_info($index) ORDER BY seqno";
        cmd.Parameters.AddWithValue("$index", index);
        var columns = new List<string>();
        using SqliteDataReader r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            columns.Add(r.GetString(0));
        }

        return columns;
    }
}
