using Npgsql;
using Switchboard.Hub;

namespace Switchboard.Stores.Postgres;

/// <summary>
/// <see cref="IMessageStore"/> on PostgreSQL. Appends go through one writer per store (<see cref="PostgresAppendWriter"/>),
/// which puts the appends waiting at that moment, to any rooms, into one transaction that locks their rooms' rows
/// (<c>SELECT … FOR UPDATE</c>), so offsets stay dense even with several servers writing; commits are durable
/// (<c>synchronous_commit</c> on, the default) before an append is acknowledged.
/// </summary>
public sealed class PostgresMessageStore : IMessageStore
{
    private readonly NpgsqlDataSource _data;
    private readonly PostgresAppendWriter _writer;

    private PostgresMessageStore(NpgsqlDataSource data)
    {
        _data = data;
        _writer = new PostgresAppendWriter(data);
    }

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
    public bool AppendsInIssueOrder => true; // one writer per store takes appends in the order they were queued

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AppendResult>> AppendAsync(string room, IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default) =>
        await _writer.AppendAsync(room, messages).ConfigureAwait(false);

    /// <summary>A store on <paramref name="connectionString"/> that has not connected yet (tests: a database out of reach).</summary>
    internal static PostgresMessageStore Unconnected(string connectionString) => new(NpgsqlDataSource.Create(connectionString));

    /// <summary>Keeps the writer from starting a transaction until <paramref name="release"/> completes (tests).</summary>
    internal Task HoldWriterAsync(Task release) => _writer.HoldAsync(release);

    /// <summary>Shared transactions that failed and ran again one append each (tests).</summary>
    internal int SplitTransactions => _writer.SplitTransactions;

    /// <summary>Transactions the writer started (tests).</summary>
    internal int Transactions => _writer.Transactions;

    /// <summary>Moves a batch's reader past results that carry no rows (statements that return none).</summary>
    internal static async Task NextRowsAsync(NpgsqlDataReader r, CancellationToken ct)
    {
        while (r.FieldCount == 0 && await r.NextResultAsync(ct).ConfigureAwait(false))
        {
        }
    }

    internal static string NewEpoch() => Guid.NewGuid().ToString("N")[..12];

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
    public async ValueTask DisposeAsync()
    {
        await _writer.DisposeAsync().ConfigureAwait(false); // what is queued is written first
        await _data.DisposeAsync().ConfigureAwait(false);
    }
}
