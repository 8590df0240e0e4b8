using Npgsql;
using Switchboard.Hub;

namespace Switchboard.Stores.Postgres;

/// <summary>
/// <see cref="IMessageStore"/> on PostgreSQL. Each append batch is one transaction that locks its room's row
/// (<c>SELECT … FOR UPDATE</c>), so offsets stay dense even with several writers; commits are durable
/// (<c>synchronous_commit</c> on, the default) before the batch is acknowledged.
/// </summary>
public sealed class PostgresMessageStore : IMessageStore
{
    private readonly NpgsqlDataSource _data;

    private PostgresMessageStore(NpgsqlDataSource data) => _data = data;

    /// <summary>True when PostgreSQL answers a trivial query within <paramref name="timeout"/> (for health checks).</summary>
    public async Task<bool> PingAsync(TimeSpan timeout)
    {
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            await using NpgsqlCommand cmd = _data.CreateCommand("SELECT 1");
            await cmd.ExecuteScalarAsync(cts.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is NpgsqlException or OperationCanceledException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    /// <summary>Connects with <paramref name="connectionString"/> and creates the tables if missing.</summary>
    public static async Task<PostgresMessageStore> OpenAsync(string connectionString, CancellationToken cancellationToken = default)
    {
        NpgsqlDataSource data = NpgsqlDataSource.Create(connectionString);
        try
        {
            await using NpgsqlConnection c = await data.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using NpgsqlCommand cmd = new("""
                CREATE TABLE IF NOT EXISTS switchboard_rooms (
                    name  text PRIMARY KEY,
                    epoch text NOT NULL,
                    head  bigint NOT NULL,
                    first bigint NOT NULL
                );
                CREATE TABLE IF NOT EXISTS switchboard_messages (
                    room    text NOT NULL,
                    seq     bigint NOT NULL,
                    id      text NOT NULL,
                    user_id text NOT NULL,
                    name    text NOT NULL,
                    text    text NOT NULL,
                    time_ms bigint NOT NULL,
                    PRIMARY KEY (room, seq),
                    UNIQUE (room, user_id, id)
                );
                """, c);
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await data.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new PostgresMessageStore(data);
    }

    /// <summary>Creates a room's row if it is missing ($1 name, $2 a new epoch).</summary>
    private const string CreateRoomSql = "INSERT INTO switchboard_rooms (name, epoch, head, first) VALUES ($1, $2, 0, 1) ON CONFLICT (name) DO NOTHING";

    private static async Task<RoomState> OpenRoomAsync(NpgsqlConnection c, NpgsqlTransaction? tx, string room, bool forUpdate, CancellationToken ct)
    {
        await using (NpgsqlCommand insert = new(CreateRoomSql, c, tx))
        {
            insert.Parameters.AddWithValue(room);
            insert.Parameters.AddWithValue(NewEpoch());
            await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await using NpgsqlCommand select = new("SELECT epoch, head, first FROM switchboard_rooms WHERE name = $1" + (forUpdate ? " FOR UPDATE" : ""), c, tx);
        select.Parameters.AddWithValue(room);
        await using NpgsqlDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await r.ReadAsync(ct).ConfigureAwait(false);
        return new RoomState(r.GetString(0), r.GetInt64(1), r.GetInt64(2));
    }

    /// <inheritdoc />
    public async ValueTask<RoomState> OpenRoomAsync(string room, CancellationToken cancellationToken = default)
    {
        await using NpgsqlConnection c = await _data.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return await OpenRoomAsync(c, null, room, forUpdate: false, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AppendResult>> AppendAsync(string room, IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default)
    {
        // Three round trips per batch, whatever its size: (1) create the room if needed, lock its row and find which of
        // the batch's ids are stored already; (2) insert the new messages as arrays and move the head; (3) commit. The
        // room's row lock (every writer takes it first) keeps the ids found in (1) true until the commit, so the offsets
        // assigned here stay dense.
        int count = messages.Count;
        string[] users = new string[count], ids = new string[count];
        for (int i = 0; i < count; i++)
        {
            users[i] = PgText.Encode(messages[i].UserId);
            ids[i] = PgText.Encode(messages[i].Id);
        }

        await using NpgsqlConnection c = await _data.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using NpgsqlTransaction tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        RoomState state;
        var stored = new Dictionary<(string User, string Id), StoredMessage>();
        await using (NpgsqlBatch find = new(c, tx)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(CreateRoomSql)
                {
                    Parameters = { new() { Value = room }, new() { Value = NewEpoch() } },
                },
                new NpgsqlBatchCommand("SELECT epoch, head, first FROM switchboard_rooms WHERE name = $1 FOR UPDATE") { Parameters = { new() { Value = room } } },
                new NpgsqlBatchCommand(FindStoredSql)
                {
                    Parameters = { new() { Value = room }, new() { Value = users }, new() { Value = ids } },
                },
            },
        })
        {
            await using NpgsqlDataReader r = await find.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await NextRowsAsync(r, cancellationToken).ConfigureAwait(false); // the room's row
            await r.ReadAsync(cancellationToken).ConfigureAwait(false);
            state = new RoomState(r.GetString(0), r.GetInt64(1), r.GetInt64(2));
            await r.NextResultAsync(cancellationToken).ConfigureAwait(false);
            await NextRowsAsync(r, cancellationToken).ConfigureAwait(false); // the ids stored already
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                string user = r.GetString(0), id = r.GetString(1);
                stored[(user, id)] = new StoredMessage(r.GetInt64(2), PgText.Decode(id), PgText.Decode(user), PgText.Decode(r.GetString(3)), PgText.Decode(r.GetString(4)),
                    DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)));
            }
        }

        var results = new AppendResult[count];
        var fresh = new List<int>(count);
        long head = state.Head;
        for (int i = 0; i < count; i++)
        {
            NewMessage m = messages[i];
            if (stored.TryGetValue((users[i], ids[i]), out StoredMessage? original))
            {
                results[i] = new AppendResult(original, true); // stored before, or earlier in this batch
                continue;
            }

            long ms = m.Time.ToUnixTimeMilliseconds();
            var message = new StoredMessage(++head, m.Id, m.UserId, m.Name, m.Text, DateTimeOffset.FromUnixTimeMilliseconds(ms));
            stored[(users[i], ids[i])] = message;
            results[i] = new AppendResult(message, false);
            fresh.Add(i);
        }

        if (fresh.Count > 0)
        {
            var seqs = new long[fresh.Count];
            var times = new long[fresh.Count];
            string[] newIds = new string[fresh.Count], newUsers = new string[fresh.Count], names = new string[fresh.Count], texts = new string[fresh.Count];
            for (int k = 0; k < fresh.Count; k++)
            {
                int i = fresh[k];
                StoredMessage m = results[i].Message;
                (seqs[k], newIds[k], newUsers[k], names[k], texts[k], times[k]) =
                    (m.Offset, ids[i], users[i], PgText.Encode(m.Name), PgText.Encode(m.Text), m.Time.ToUnixTimeMilliseconds());
            }

            await using NpgsqlBatch write = new(c, tx)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("""
                        INSERT INTO switchboard_messages (room, seq, id, user_id, name, text, time_ms)
                        SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
                        """)
                    {
                        Parameters =
                        {
                            new() { Value = room }, new() { Value = seqs }, new() { Value = newIds }, new() { Value = newUsers },
                            new() { Value = names }, new() { Value = texts }, new() { Value = times },
                        },
                    },
                    new NpgsqlBatchCommand("UPDATE switchboard_rooms SET head = $1 WHERE name = $2") { Parameters = { new() { Value = head }, new() { Value = room } } },
                },
            };
            await write.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return results;
    }

    /// <summary>
    /// Which of a batch's (user, id) pairs ($2, $3) room $1 holds already: one probe of the unique index per pair. Written
    /// as a join, PostgreSQL planned it as a hash join over the room's whole history once the room held more rows than
    /// the batch has ids (its estimate for the index probes was higher than for scanning the room): every batch then read
    /// every stored message of its room, and the database's CPU, not its commits, bounded a room at ~5,000 publishes/s.
    /// The <c>LIMIT</c> keeps the subquery from being merged into a join, so it runs once per pair, as an index probe.
    /// </summary>
    internal const string FindStoredSql = """
        SELECT m.user_id, m.id, m.seq, m.name, m.text, m.time_ms
        FROM unnest($2::text[], $3::text[]) AS k(user_id, id)
        CROSS JOIN LATERAL (
            SELECT * FROM switchboard_messages s WHERE s.room = $1 AND s.user_id = k.user_id AND s.id = k.id LIMIT 1
        ) AS m
        """;

    /// <summary>Moves a batch's reader past results that carry no rows (statements that return none).</summary>
    private static async Task NextRowsAsync(NpgsqlDataReader r, CancellationToken ct)
    {
        while (r.FieldCount == 0 && await r.NextResultAsync(ct).ConfigureAwait(false))
        {
        }
    }

    private static string NewEpoch() => Guid.NewGuid().ToString("N")[..12];

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<StoredMessage>> ReadAfterAsync(string room, long afterOffset, int limit, CancellationToken cancellationToken = default) =>
        ReadAsync("SELECT seq, id, user_id, name, text, time_ms FROM switchboard_messages WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3", room, afterOffset, limit, false, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<StoredMessage>> ReadBeforeAsync(string room, long beforeOffset, int limit, CancellationToken cancellationToken = default) =>
        ReadAsync("SELECT seq, id, user_id, name, text, time_ms FROM switchboard_messages WHERE room = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3", room, beforeOffset, limit, true, cancellationToken);

    private async ValueTask<IReadOnlyList<StoredMessage>> ReadAsync(string sql, string room, long offset, int limit, bool reverse, CancellationToken ct)
    {
        await using NpgsqlCommand cmd = _data.CreateCommand(sql);
        cmd.Parameters.AddWithValue(room);
        cmd.Parameters.AddWithValue(offset);
        cmd.Parameters.AddWithValue((long)limit);
        var list = new List<StoredMessage>(Math.Min(limit, 1024));
        await using NpgsqlDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            list.Add(new StoredMessage(r.GetInt64(0), PgText.Decode(r.GetString(1)), PgText.Decode(r.GetString(2)), PgText.Decode(r.GetString(3)), PgText.Decode(r.GetString(4)),
                DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5))));
        }

        if (reverse)
        {
            list.Reverse();
        }

        return list;
    }

    /// <inheritdoc />
    public async ValueTask<RoomState> ResetAsync(string room, CancellationToken cancellationToken = default)
    {
        await using NpgsqlConnection c = await _data.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using NpgsqlTransaction tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        _ = await OpenRoomAsync(c, tx, room, forUpdate: true, cancellationToken).ConfigureAwait(false); // appends by other nodes wait for the commit
        var state = new RoomState(NewEpoch(), 0, 1);
        await using NpgsqlBatch batch = new(c, tx)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("DELETE FROM switchboard_messages WHERE room = $1") { Parameters = { new() { Value = room } } },
                new NpgsqlBatchCommand("UPDATE switchboard_rooms SET epoch = $2, head = 0, first = 1 WHERE name = $1") { Parameters = { new() { Value = room }, new() { Value = state.Epoch } } },
            },
        };
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return state;
    }

    /// <inheritdoc />
    public async ValueTask<RoomState> TrimAsync(string room, RetentionPolicy policy, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using NpgsqlConnection c = await _data.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using NpgsqlTransaction tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        RoomState state = await OpenRoomAsync(c, tx, room, forUpdate: true, cancellationToken).ConfigureAwait(false);
        long first = state.First;
        if (policy.MaxCount is long max)
        {
            first = Math.Max(first, state.Head - max + 1);
        }

        if (policy.MaxAge is TimeSpan age)
        {
            await using NpgsqlCommand oldest = new("SELECT MIN(seq) FROM switchboard_messages WHERE room = $1 AND time_ms >= $2", c, tx);
            oldest.Parameters.AddWithValue(room);
            oldest.Parameters.AddWithValue((now - age).ToUnixTimeMilliseconds());
            object? v = await oldest.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            first = Math.Max(first, v is long s ? s : state.Head + 1);
        }

        if (first != state.First)
        {
            await using NpgsqlBatch batch = new(c, tx)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("DELETE FROM switchboard_messages WHERE room = $1 AND seq < $2") { Parameters = { new() { Value = room }, new() { Value = first } } },
                    new NpgsqlBatchCommand("UPDATE switchboard_rooms SET first = $2 WHERE name = $1") { Parameters = { new() { Value = room }, new() { Value = first } } },
                },
            };
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            state = state with { First = first };
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return state;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<string>> ListRoomsAsync(CancellationToken cancellationToken = default)
    {
        await using NpgsqlCommand cmd = _data.CreateCommand("SELECT name FROM switchboard_rooms ORDER BY name");
        var list = new List<string>();
        await using NpgsqlDataReader r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(r.GetString(0));
        }

        return list;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _data.DisposeAsync();
}

/// <summary>
/// PostgreSQL's text type cannot hold U+0000, which a client may well send (JSON "\u0000"). Strings are stored with a
/// reversible escape instead: U+0000 as U+E000 U+E001 and U+E000 itself as U+E000 U+E000 (a private-use character, so
/// real text almost never needs the second rule). Strings with neither character are stored as they are.
/// </summary>
internal static class PgText
{
    private const char Escape = '\uE000';

    public static string Encode(string value)
    {
        if (value.AsSpan().IndexOfAny('\0', Escape) < 0)
        {
            return value;
        }

        var sb = new System.Text.StringBuilder(value.Length + 8);
        foreach (char c in value)
        {
            _ = c switch
            {
                '\0' => sb.Append(Escape).Append('\uE001'),
                Escape => sb.Append(Escape).Append(Escape),
                _ => sb.Append(c),
            };
        }

        return sb.ToString();
    }

    public static string Decode(string stored)
    {
        if (stored.AsSpan().IndexOf(Escape) < 0)
        {
            return stored;
        }

        var sb = new System.Text.StringBuilder(stored.Length);
        for (int i = 0; i < stored.Length; i++)
        {
            if (stored[i] == Escape && i + 1 < stored.Length)
            {
                i++;
                sb.Append(stored[i] == '\uE001' ? '\0' : stored[i]);
            }
            else
            {
                sb.Append(stored[i]);
            }
        }

        return sb.ToString();
    }
}
