using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using SQLitePCL;
using Switchboard.Hub;

namespace Switchboard.Stores.Sqlite;

/// <summary>
/// <see cref="IMessageStore"/> on SQLite. Write-ahead logging with <c>synchronous=FULL</c> (a commit is on disk
/// before it is acknowledged); one writer connection owns every write and batches all requests waiting at that
/// moment (publishes to any number of rooms) into one transaction, so many publishes share one fsync. Reads use
/// their own pooled connections and never wait for the writer. The writer keeps its statement journals (a savepoint
/// per request when a batch that failed runs again, and SQLite's own per statement) in memory: SQLite otherwise moves
/// one past 64 KiB into a temporary file outside the data directory (in <c>/var/tmp</c> on Linux), which costs a
/// write per page and fails where that directory is not writable.
/// </summary>
public sealed class SqliteMessageStore : IMessageStore
{
    private readonly string _connectionString;
    private readonly string _logPath; // the write-ahead log beside the database file
    private readonly SqliteConnection _writer;

    // The writer loop's statements, prepared once and reused (writer loop only): preparing five statements per
    // append (savepoint, release, find, insert, head update) cost more than executing them for one-message batches.
    private SqliteCommand? _find; // duplicates only
    private RawStatement? _savepoint, _release, _rollbackTo, _insert, _updateHead; // run per request or per message
    private SqliteTransaction? _tx; // the batch's transaction, which every command must name
    private readonly Channel<Request> _requests = Channel.CreateUnbounded<Request>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, KnownRoom> _rooms = new(StringComparer.Ordinal); // writer-owned cache, see RoomCacheLimit
    private readonly Task _loop;
    private readonly WalCheckpointer _checkpointer;

    /// <summary>
    /// The writer's page cache, in KiB (SQLite's default is 2,000). A batch over many rooms dirties a table leaf and an
    /// index leaf per room: past the default, SQLite spilled dirty pages into the log before the commit and read pages
    /// back from the database file (measured over 100 rooms: ~17,000 reads a second, now ~4,400, all of them the
    /// background checkpoint's). The bound on what the writer holds in memory for its pages.
    /// </summary>
    internal const int WriterCacheKiB = 16 * 1024;

    /// <summary>
    /// Rooms whose state (epoch, head, first offset) the writer keeps between batches: a room used once does not hold
    /// memory for the life of the process. Past this the cache starts over, and rooms are read again when next used
    /// (one indexed read each; ~2 MB at the limit with 20-character names).
    /// </summary>
    public const int RoomCacheLimit = 10_000;

    /// <summary>Rooms the writer holds in its cache now (bound: <see cref="RoomCacheLimit"/>).</summary>
    public int CachedRooms => _rooms.Count; // read from other threads for a gauge: an int, possibly a moment old

    private SqliteMessageStore(string connectionString, SqliteConnection writer, TimeProvider time)
    {
        _connectionString = connectionString;
        _logPath = Path + "-wal";
        _writer = writer;
        _checkpointer = new WalCheckpointer(connectionString, time);
        _loop = Task.Run(WriterLoopAsync);
    }

    /// <summary>Background checkpoints run so far (see <see cref="WalCheckpointer"/>).</summary>
    internal int Checkpoints => _checkpointer.Checkpoints;

    /// <summary>Completes when the next background checkpoint has run.</summary>
    internal Task NextCheckpointAsync() => _checkpointer.NextCheckpointAsync();

    /// <summary>The database file.</summary>
    public string Path => new SqliteConnectionStringBuilder(_connectionString).DataSource;

    /// <summary>
    /// Bytes in the write-ahead log file now (0 when there is none). Bounded: the writer copies the log into the
    /// database itself once it holds 16,000 pages, and the file is truncated back to 64 MiB when the log starts over.
    /// </summary>
    public long LogBytes
    {
        get
        {
            try
            {
                var log = new FileInfo(_logPath);
                return log.Exists ? log.Length : 0;
            }
            catch (IOException)
            {
                return 0;
            }
        }
    }

    /// <summary>Opens (creating if needed) the database at <paramref name="path"/>.</summary>
    public static Task<SqliteMessageStore> OpenAsync(string path, CancellationToken cancellationToken = default) => OpenAsync(path, TimeProvider.System, cancellationToken);

    /// <summary>Opens (creating if needed) the database at <paramref name="path"/>; <paramref name="time"/> paces the background checkpoints.</summary>
    public static async Task<SqliteMessageStore> OpenAsync(string path, TimeProvider time, CancellationToken cancellationToken = default)
    {
        string full = System.IO.Path.GetFullPath(path);
        string? dir = System.IO.Path.GetDirectoryName(full);
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }

        string cs = new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        var writer = new SqliteConnection(cs);
        await writer.OpenAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(writer, $"""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = FULL;
            PRAGMA wal_autocheckpoint = {WalCheckpointer.WriterBoundPages};
            PRAGMA journal_size_limit = {WalCheckpointer.WriterBoundPages * 4096};
            PRAGMA busy_timeout = 30000;
            PRAGMA cache_size = -{WriterCacheKiB};
            PRAGMA temp_store = MEMORY;
            """).ConfigureAwait(false);
        await SqliteSchema.CreateOrUpgradeAsync(writer, cancellationToken).ConfigureAwait(false);
        return new SqliteMessageStore(cs, writer, time);
    }

    private static async Task ExecAsync(SqliteConnection c, string sql)
    {
        using SqliteCommand cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    // ------------------------------------------------------------ the writer

    private abstract class Request
    {
        public abstract void Execute(SqliteMessageStore store);
        public abstract void Fail(Exception error);
        public abstract void Complete();
    }

    private abstract class Request<T> : Request
    {
        private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;

        public Task<T> Task => _done.Task;

        protected void SetResult(T value) => _result = value;

        public override void Fail(Exception error) => _done.TrySetException(error);

        public override void Complete() => _done.TrySetResult(_result!);
    }

    private sealed class OpenRequest(string room) : Request<RoomState>
    {
        public override void Execute(SqliteMessageStore store) => SetResult(store.OpenRoom(room).State);
    }

    private sealed class AppendRequest(string room, IReadOnlyList<NewMessage> messages) : Request<IReadOnlyList<AppendResult>>
    {
        public override void Execute(SqliteMessageStore store) => SetResult(store.Append(room, messages));
    }

    private sealed class PragmaRequest(string name) : Request<long>
    {
        public override void Execute(SqliteMessageStore store)
        {
            using SqliteCommand pragma = store._writer.CreateCommand();
            pragma.Transaction = store._tx;
            pragma.CommandText = $"PRAGMA {name}";
            SetResult(Convert.ToInt64(pragma.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>A setting of the writer's own connection (tests: settings are per connection).</summary>
    internal Task<long> WriterPragmaAsync(string name) => SubmitAsync(new PragmaRequest(name));

    private sealed class HoldRequest(TaskCompletionSource started, Task release) : Request<bool>
    {
        public override void Execute(SqliteMessageStore store)
        {
            started.TrySetResult();
            release.GetAwaiter().GetResult();
        }
    }

    /// <summary>
    /// Keeps the writer inside a batch until <paramref name="release"/> completes (tests: what is submitted meanwhile
    /// makes the next batch). Completes when the writer holds.
    /// </summary>
    internal async Task HoldWriterAsync(Task release)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = SubmitAsync(new HoldRequest(started, release));
        await started.Task.ConfigureAwait(false);
    }

    private sealed class TrimRequest(string room, RetentionPolicy policy, DateTimeOffset now) : Request<RoomState>
    {
        public override void Execute(SqliteMessageStore store) => SetResult(store.Trim(room, policy, now));
    }

    private sealed class ResetRequest(string room) : Request<RoomState>
    {
        public override void Execute(SqliteMessageStore store) => SetResult(store.Reset(room));
    }

    private async Task<T> SubmitAsync<T>(Request<T> request)
    {
        if (!_requests.Writer.TryWrite(request))
        {
            throw new ObjectDisposedException(nameof(SqliteMessageStore));
        }

        return await request.Task.ConfigureAwait(false);
    }

    private async Task WriterLoopAsync()
    {
        var batch = new List<Request>();
        while (await _requests.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (batch.Count < 1024 && _requests.Reader.TryRead(out Request? r))
            {
                batch.Add(r);
            }

            // One transaction for the whole batch. First without a savepoint per request (two more statements each, and
            // SQLite's journal of the pages it changes: ~3-6% of a durable publish over 100 rooms): most batches fail nowhere.
            // If anything fails, the batch is rolled back and runs again with a savepoint per request, so that a
            // request that fails fails alone.
            var committed = new List<Request>(batch.Count);
            var failed = new List<(Request, Exception)>();
            Exception? error = RunBatch(batch, isolated: false, committed, failed);
            if (error is not null)
            {
                // The cache may hold what was rolled back: rooms are read again from the database when next used. Not
                // a copy of the cache taken before each batch to restore here: every commit would pay time and memory
                // in proportion to the rooms the store has seen (1 ms and 434 KiB a commit at 10,000 rooms).
                _rooms.Clear();
                committed.Clear();
                error = RunBatch(batch, isolated: true, committed, failed);
            }

            if (error is not null)
            {
                _rooms.Clear();
                foreach (Request r in batch)
                {
                    r.Fail(error);
                }

                batch.Clear();
                continue;
            }

            foreach (Request r in committed)
            {
                r.Complete();
            }

            foreach (var (r, ex) in failed)
            {
                r.Fail(ex);
            }

            batch.Clear();
        }
    }

    /// <summary>
    /// Runs <paramref name="batch"/> as one transaction and commits it; null when committed, else what failed it (rolled
    /// back). Not <paramref name="isolated"/>: the first failure fails the batch. Isolated: each request runs in a
    /// savepoint, and one that fails is rolled back to it and listed in <paramref name="failed"/> while the rest commit.
    /// </summary>
    private Exception? RunBatch(List<Request> batch, bool isolated, List<Request> committed, List<(Request, Exception)> failed)
    {
        try
        {
            using SqliteTransaction tx = _writer.BeginTransaction(deferred: false);
            _tx = tx;
            foreach (Request r in batch)
            {
                if (!isolated)
                {
                    r.Execute(this);
                    if (raw.sqlite3_get_autocommit(_writer.Handle) != 0)
                    {
                        // SQLite ends a transaction itself on some errors (a full disk, an I/O error): what follows must
                        // not run outside it, each statement committing on its own.
                        throw new InvalidOperationException("The batch's transaction ended inside a request.");
                    }

                    committed.Add(r);
                    continue;
                }

                Raw(ref _savepoint, "SAVEPOINT req").Execute();
                try
                {
                    r.Execute(this);
                    Raw(ref _release, "RELEASE req").Execute();
                    committed.Add(r);
                }
                catch (Exception ex)
                {
                    Raw(ref _rollbackTo, "ROLLBACK TO req").Execute();
                    Raw(ref _release, "RELEASE req").Execute();
                    failed.Add((r, ex));
                    _rooms.Clear(); // the cache may hold what was rolled back: reload rooms from the database
                }
            }

            tx.Commit(); // durable (WAL + synchronous=FULL) before anyone is told
            _checkpointer.Committed();
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
        finally
        {
            _tx = null;
        }
    }

    /// <summary>A statement of the writer loop's hot path, prepared on first use (see <see cref="RawStatement"/>).</summary>
    private RawStatement Raw(ref RawStatement? cached, string sql) => cached ??= new RawStatement(_writer, sql);

    /// <summary>A reused statement of the writer loop, bound to the current batch's transaction.</summary>
    private SqliteCommand Statement(ref SqliteCommand? cached, string sql, params ReadOnlySpan<(string Name, SqliteType Type)> parameters)
    {
        if (cached is null)
        {
            cached = _writer.CreateCommand();
            cached.CommandText = sql;
            foreach (var (name, type) in parameters)
            {
                cached.Parameters.Add(name, type);
            }
        }

        cached.Transaction = _tx;
        return cached;
    }

    /// <summary>A room's number in the database (<c>rooms.rid</c>, what its messages carry) and its state.</summary>
    private readonly record struct KnownRoom(long Id, RoomState State);

    private KnownRoom OpenRoom(string room)
    {
        if (_rooms.TryGetValue(room, out KnownRoom known))
        {
            return known;
        }

        using (SqliteCommand select = _writer.CreateCommand())
        {
            select.CommandText = "SELECT rid, epoch, head, first FROM rooms WHERE name = $room";
            select.Parameters.AddWithValue("$room", room);
            using SqliteDataReader reader = select.ExecuteReader();
            if (reader.Read())
            {
                known = new KnownRoom(reader.GetInt64(0), new RoomState(reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3)));
                Cache(room, known);
                return known;
            }
        }

        var state = new RoomState(Guid.NewGuid().ToString("N")[..12], 0, 1);
        using SqliteCommand insert = _writer.CreateCommand();
        insert.CommandText = """
            INSERT INTO rooms (name, rid, epoch, head, first)
                VALUES ($room, (SELECT COALESCE(MAX(rid), 0) + 1 FROM rooms), $epoch, 0, 1)
                RETURNING rid
            """;
        insert.Parameters.AddWithValue("$room", room);
        insert.Parameters.AddWithValue("$epoch", state.Epoch);
        long rid = (long)insert.ExecuteScalar()!;
        if (rid > SqliteSchema.MaxRoomId)
        {
            // Rolled back with the batch: the request fails, nothing is created.
            throw new InvalidOperationException($"Room '{room}' cannot be created: the database has numbered the most rooms it can ({SqliteSchema.MaxRoomId}).");
        }

        known = new KnownRoom(rid, state);
        Cache(room, known);
        return known;
    }

    private void Cache(string room, KnownRoom known)
    {
        if (_rooms.Count >= RoomCacheLimit && !_rooms.ContainsKey(room))
        {
            _rooms.Clear();
        }

        _rooms[room] = known;
    }

    private IReadOnlyList<AppendResult> Append(string room, IReadOnlyList<NewMessage> messages)
    {
        (long rid, RoomState state) = OpenRoom(room);
        var results = new List<AppendResult>(messages.Count);
        SqliteCommand find = Statement(ref _find, "SELECT seq, name, text, time_ms FROM messages WHERE room = $room AND user_id = $user AND id = $id",
            ("$room", SqliteType.Integer), ("$user", SqliteType.Text), ("$id", SqliteType.Text));
        SqliteParameter fRoom = find.Parameters[0], fUser = find.Parameters[1], fId = find.Parameters[2];
        // Insert first and look the original up only when the id was taken: one index probe per new message, not two.
        RawStatement insert = Raw(ref _insert,
            "INSERT INTO messages (k, id, user_id, name, text, time_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id, room, user_id) DO NOTHING");
        fRoom.Value = rid;
        long head = state.Head;
        foreach (NewMessage m in messages)
        {
            if (head == SqliteSchema.MaxOffset)
            {
                throw new InvalidOperationException($"Room '{room}' is full: its offsets reached {SqliteSchema.MaxOffset}.");
            }

            long ms = m.Time.ToUnixTimeMilliseconds();
            insert.Bind(1, SqliteSchema.Key(rid, head + 1));
            insert.Bind(2, m.Id);
            insert.Bind(3, m.UserId);
            insert.Bind(4, m.Name);
            insert.Bind(5, m.Text);
            insert.Bind(6, ms);
            if (insert.Execute() == 1)
            {
                head++;
                results.Add(new AppendResult(new StoredMessage(head, m.Id, m.UserId, m.Name, m.Text, DateTimeOffset.FromUnixTimeMilliseconds(ms)), false));
                continue;
            }

            fUser.Value = m.UserId;
            fId.Value = m.Id;
            using SqliteDataReader r = find.ExecuteReader();
            if (!r.Read())
            {
                throw new InvalidOperationException($"Room '{room}': message '{m.Id}' was neither inserted nor found.");
            }

            results.Add(new AppendResult(new StoredMessage(r.GetInt64(0), m.Id, m.UserId, r.GetString(1), r.GetString(2), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3))), true));
        }

        if (head != state.Head)
        {
            RawStatement update = Raw(ref _updateHead, "UPDATE rooms SET head = ?1 WHERE name = ?2");
            update.Bind(1, head);
            update.Bind(2, room);
            update.Execute();
            Cache(room, new KnownRoom(rid, state with { Head = head }));
        }

        return results;
    }

    private RoomState Reset(string room)
    {
        long rid = OpenRoom(room).Id;
        var state = new RoomState(Guid.NewGuid().ToString("N")[..12], 0, 1);
        using SqliteCommand reset = _writer.CreateCommand();
        reset.CommandText = """
            DELETE FROM messages WHERE k >= $from AND k < $to;
            UPDATE rooms SET epoch = $epoch, head = 0, first = 1 WHERE rid = $rid;
            """;
        reset.Parameters.AddWithValue("$from", SqliteSchema.Key(rid, 0));
        reset.Parameters.AddWithValue("$to", SqliteSchema.Key(rid + 1, 0));
        reset.Parameters.AddWithValue("$rid", rid);
        reset.Parameters.AddWithValue("$epoch", state.Epoch);
        reset.ExecuteNonQuery();
        Cache(room, new KnownRoom(rid, state));
        return state;
    }

    private RoomState Trim(string room, RetentionPolicy policy, DateTimeOffset now)
    {
        (long rid, RoomState state) = OpenRoom(room);
        long first = state.First;
        if (policy.MaxCount is long max)
        {
            first = Math.Max(first, state.Head - max + 1);
        }

        if (policy.MaxAge is TimeSpan age)
        {
            using SqliteCommand oldest = _writer.CreateCommand();
            // The first in offset order young enough to keep: the scan stops there instead of reading the whole room.
            oldest.CommandText = "SELECT seq FROM messages WHERE k > $from AND k < $to AND time_ms >= $cutoff ORDER BY k LIMIT 1";
            oldest.Parameters.AddWithValue("$from", SqliteSchema.Key(rid, 0));
            oldest.Parameters.AddWithValue("$to", SqliteSchema.Key(rid + 1, 0));
            oldest.Parameters.AddWithValue("$cutoff", (now - age).ToUnixTimeMilliseconds());
            object? v = oldest.ExecuteScalar();
            first = Math.Max(first, v is long s ? s : state.Head + 1);
        }

        if (first == state.First)
        {
            return state;
        }

        using SqliteCommand delete = _writer.CreateCommand();
        delete.CommandText = "DELETE FROM messages WHERE k > $from AND k < $to; UPDATE rooms SET first = $first WHERE rid = $rid";
        delete.Parameters.AddWithValue("$from", SqliteSchema.Key(rid, 0));
        delete.Parameters.AddWithValue("$to", SqliteSchema.Key(rid, first));
        delete.Parameters.AddWithValue("$rid", rid);
        delete.Parameters.AddWithValue("$first", first);
        delete.ExecuteNonQuery();
        state = state with { First = first };
        Cache(room, new KnownRoom(rid, state));
        return state;
    }

    // ------------------------------------------------------------ IMessageStore

    /// <inheritdoc />
    public async ValueTask<RoomState> OpenRoomAsync(string room, CancellationToken cancellationToken = default) =>
        await SubmitAsync(new OpenRequest(room)).ConfigureAwait(false);

    /// <inheritdoc />
    public bool AppendsInIssueOrder => true; // one writer takes requests in the order they were queued

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AppendResult>> AppendAsync(string room, IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default) =>
        await SubmitAsync(new AppendRequest(room, messages)).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<RoomState> ResetAsync(string room, CancellationToken cancellationToken = default) =>
        await SubmitAsync(new ResetRequest(room)).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask<RoomState> TrimAsync(string room, RetentionPolicy policy, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        await SubmitAsync(new TrimRequest(room, policy, now)).ConfigureAwait(false);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<StoredMessage>> ReadAfterAsync(string room, long afterOffset, int limit, CancellationToken cancellationToken = default) =>
        ReadAsync(ReadAfterSql, room, afterOffset, limit, reverse: false, cancellationToken);

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<StoredMessage>> ReadBeforeAsync(string room, long beforeOffset, int limit, CancellationToken cancellationToken = default) =>
        ReadAsync(ReadBeforeSql, room, beforeOffset, limit, reverse: true, cancellationToken);

    // A room's messages are one range of row ids (SqliteSchema.Key): the room's number, then a range scan of the table.
    private static readonly string ReadAfterSql = $"""
        SELECT m.seq, m.id, m.user_id, m.name, m.text, m.time_ms FROM rooms r
        JOIN messages m ON m.k > (r.rid << {SqliteSchema.OffsetBits}) + $offset AND m.k < ((r.rid + 1) << {SqliteSchema.OffsetBits})
        WHERE r.name = $room ORDER BY m.k LIMIT $limit
        """;

    private static readonly string ReadBeforeSql = $"""
        SELECT m.seq, m.id, m.user_id, m.name, m.text, m.time_ms FROM rooms r
        JOIN messages m ON m.k > (r.rid << {SqliteSchema.OffsetBits}) AND m.k < (r.rid << {SqliteSchema.OffsetBits}) + $offset
        WHERE r.name = $room ORDER BY m.k DESC LIMIT $limit
        """;

    // SQLite's "async" methods run synchronously on the caller's thread, and the caller may be a socket engine thread
    // running I/O continuations inline: reads go to the thread pool so that a large page never stalls other sockets.
    private ValueTask<IReadOnlyList<StoredMessage>> ReadAsync(string sql, string room, long offset, int limit, bool reverse, CancellationToken cancellationToken) =>
        new(Task.Run(() => Read(sql, room, offset, limit, reverse), cancellationToken));

    private IReadOnlyList<StoredMessage> Read(string sql, string room, long offset, int limit, bool reverse)
    {
        using var c = new SqliteConnection(_connectionString);
        c.Open();
        using SqliteCommand cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Parameters.AddWithValue("$room", room);
        cmd.Parameters.AddWithValue("$offset", Math.Clamp(offset, 0, SqliteSchema.MaxOffset + 1)); // the range stays inside the room's keys
        cmd.Parameters.AddWithValue("$limit", limit);
        var list = new List<StoredMessage>(Math.Min(limit, 1024));
        using SqliteDataReader r = cmd.ExecuteReader();
        while (r.Read())
        {
            list.Add(new StoredMessage(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5))));
        }

        if (reverse)
        {
            list.Reverse();
        }

        return list;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<string>> ListRoomsAsync(CancellationToken cancellationToken = default) =>
        new(Task.Run<IReadOnlyList<string>>(() =>
        {
            using var c = new SqliteConnection(_connectionString);
            c.Open();
            using SqliteCommand cmd = c.CreateCommand();
            cmd.CommandText = "SELECT name FROM rooms ORDER BY name";
            var list = new List<string>();
            using SqliteDataReader r = cmd.ExecuteReader();
            while (r.Read())
            {
                list.Add(r.GetString(0));
            }

            return list;
        }, cancellationToken));

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _requests.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        _find?.Dispose();
        foreach (RawStatement? statement in (RawStatement?[])[_savepoint, _release, _rollbackTo, _insert, _updateHead])
        {
            statement?.Dispose(); // before the connection closes
        }

        await _writer.DisposeAsync().ConfigureAwait(false);
        await _checkpointer.DisposeAsync().ConfigureAwait(false);
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
    }
}
