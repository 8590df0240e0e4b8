using Microsoft.Data.Sqlite;

namespace Switchboard.Stores.Sqlite;

/// <summary>
/// The SQLite store's tables, and the upgrade of a database written by an earlier layout.
/// <para>
/// Rooms are numbered (<c>rooms.rid</c>), and a message's row id is its key: the room's number in the high bits and its
/// offset in the low <see cref="OffsetBits"/> (<see cref="Key"/>). The table stays clustered by room and offset — a
/// room's history is one range of one B-tree, a retention trim frees whole pages — but its interior pages hold 8-byte
/// keys instead of whole rows: the layout it replaces (a table without row ids, keyed by room name and offset) kept
/// the full record in every interior cell (that is how SQLite stores a table without row ids), so a commit over 100
/// rooms rewrote ~40 interior pages besides its ~130 leaves, and every seek compared room names as strings. The room
/// and offset are readable as the generated columns <c>room</c> and <c>seq</c>, which take no space on disk; the
/// retry index (id, room, user) is built on them.
/// </para>
/// <para>
/// Not a table in commit order with an index by (room, offset), which measured another 6–10% cheaper per publish over
/// 100 rooms: messages of rooms kept for different times would share pages, and one long-kept message holds its whole
/// page after its neighbours are trimmed — up to a 4 KiB page per message kept, with a busy room beside quiet ones.
/// </para>
/// </summary>
internal static class SqliteSchema
{
    /// <summary>Bits of a message's key that hold its offset.</summary>
    public const int OffsetBits = 40;

    /// <summary>The largest offset a room can reach (about 1.1 × 10^12 messages).</summary>
    public const long MaxOffset = (1L << OffsetBits) - 1;

    /// <summary>
    /// The most rooms a database can number (about 8.4 million; rooms are never renumbered). One below what the key's
    /// high bits can hold, so that the end of the last room's range, <c>Key(MaxRoomId + 1, 0)</c>, is a positive 64-bit
    /// integer too.
    /// </summary>
    public const long MaxRoomId = (1L << (63 - OffsetBits)) - 2;

    /// <summary>
    /// The row id of room <paramref name="rid"/>'s message at <paramref name="offset"/> (0 to <see cref="MaxOffset"/> + 1:
    /// the bounds of a room's range).
    /// </summary>
    public static long Key(long rid, long offset) => (rid << OffsetBits) + offset;

    private static readonly string Tables = $"""
        CREATE TABLE IF NOT EXISTS rooms (
            name  TEXT PRIMARY KEY,
            rid   INTEGER NOT NULL UNIQUE,
            epoch TEXT NOT NULL,
            head  INTEGER NOT NULL,
            first INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS messages (
            k       INTEGER PRIMARY KEY,
            id      TEXT NOT NULL,
            user_id TEXT NOT NULL,
            name    TEXT NOT NULL,
            text    TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            room    INTEGER GENERATED ALWAYS AS (k >> {OffsetBits}) VIRTUAL,
            seq     INTEGER GENERATED ALWAYS AS (k & {MaxOffset}) VIRTUAL
        );
        """;

    // Built after an upgrade's copy, not during it: one sort instead of an insert per row.
    private const string Indexes = """
        CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (id, room, user_id);
        """;

    /// <summary>
    /// Creates the tables in a new database, or rewrites a database of the earlier layout (rooms by name only, messages
    /// clustered by room name and offset) into this one. One transaction: an upgrade interrupted (a crash, a full disk)
    /// leaves the database as it was, and the next open starts it again. It refuses to finish if a message would not
    /// be carried over.
    /// </summary>
    public static async Task CreateOrUpgradeAsync(SqliteConnection c, CancellationToken cancellationToken)
    {
        using SqliteTransaction tx = c.BeginTransaction(deferred: false);
        bool upgrade = await ScalarAsync(c, tx, "SELECT COUNT(*) FROM pragma_table_info('rooms')", cancellationToken) > 0
            && await ScalarAsync(c, tx, "SELECT COUNT(*) FROM pragma_table_info('rooms') WHERE name = 'rid'", cancellationToken) == 0;
        if (upgrade)
        {
            await ExecAsync(c, tx, """
                DROP INDEX IF EXISTS messages_idempotency;
                DROP INDEX IF EXISTS messages_by_id;
                ALTER TABLE rooms RENAME TO rooms_by_name;
                ALTER TABLE messages RENAME TO messages_by_name;
                """, cancellationToken).ConfigureAwait(false);
        }

        await ExecAsync(c, tx, Tables, cancellationToken).ConfigureAwait(false);
        if (upgrade)
        {
            await ExecAsync(c, tx, $"""
                INSERT INTO rooms (name, rid, epoch, head, first)
                    SELECT name, row_number() OVER (ORDER BY name), epoch, head, first FROM rooms_by_name;
                INSERT INTO messages (k, id, user_id, name, text, time_ms)
                    SELECT (r.rid << {OffsetBits}) + m.seq, m.id, m.user_id, m.name, m.text, m.time_ms
                    FROM messages_by_name m JOIN rooms r ON r.name = m.room
                    ORDER BY r.rid, m.seq;
                """, cancellationToken).ConfigureAwait(false);
            long before = await ScalarAsync(c, tx, "SELECT COUNT(*) FROM messages_by_name", cancellationToken);
            long after = await ScalarAsync(c, tx, "SELECT COUNT(*) FROM messages", cancellationToken);
            if (before != after)
            {
                throw new InvalidOperationException(
                    $"The database's upgrade would carry over {after} of its {before} messages (messages of a room it has no record of); nothing was changed.");
            }

            await ExecAsync(c, tx, "DROP TABLE messages_by_name; DROP TABLE rooms_by_name;", cancellationToken).ConfigureAwait(false);
        }

        await ExecAsync(c, tx, Indexes, cancellationToken).ConfigureAwait(false);
        tx.Commit();
    }

    private static async Task ExecAsync(SqliteConnection c, SqliteTransaction tx, string sql, CancellationToken cancellationToken)
    {
        using SqliteCommand cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<long> ScalarAsync(SqliteConnection c, SqliteTransaction tx, string sql, CancellationToken cancellationToken)
    {
        using SqliteCommand cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }
}
