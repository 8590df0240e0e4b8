using System.Threading.Channels;
using Npgsql;
using Switchboard.Hub;

namespace Switchboard.Stores.Postgres;

/// <summary>
/// The server's one writer of appends to PostgreSQL: it takes every append waiting at that moment (to any rooms) and
/// runs them as one transaction, in the order they were issued. A transaction per room batch made 100 busy rooms 100
/// concurrent transactions of three round trips and a commit each (~23 µs of the server's CPU per publish in the
/// driver and the hub); a room could have one batch in flight, because concurrent transactions could commit a room's
/// batches out of order. Here the order is the queue's, so a room may have several in flight
/// (<see cref="IMessageStore.AppendsInIssueOrder"/>).
/// <para>
/// A transaction is three round trips whatever it holds: (1) create the rooms that are missing, lock the rooms' rows
/// in name order and find which of the (room, user, id) triples are stored already; (2) insert the new messages and
/// move the heads; (3) commit. Every server locks rooms in the database's name order, so two servers' transactions
/// never wait on each other in a cycle. If a statement fails, the transaction's appends run again one per transaction,
/// so that an append that fails fails alone; if the database cannot be reached, they all fail at once.
/// </para>
/// </summary>
internal sealed class PostgresAppendWriter : IAsyncDisposable
{
    /// <summary>Appends one transaction takes at most.</summary>
    internal const int MaxAppends = 1024;

    /// <summary>Messages one transaction takes at most (one append always goes in whole).</summary>
    internal const int MaxMessages = 4096;

    private readonly NpgsqlDataSource _data;
    private readonly Channel<Item> _queue = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;
    private int _splitTransactions, _transactions;

    /// <summary>Transactions of several appends that failed and were run again one append each (tests).</summary>
    internal int SplitTransactions => Volatile.Read(ref _splitTransactions);

    /// <summary>Transactions started, shared or not (tests).</summary>
    internal int Transactions => Volatile.Read(ref _transactions);

    public PostgresAppendWriter(NpgsqlDataSource data)
    {
        _data = data;
        _loop = Task.Run(RunAsync);
    }

    private abstract class Item;

    private sealed class Append(string room, IReadOnlyList<NewMessage> messages) : Item
    {
        public string Room { get; } = room;
        public IReadOnlyList<NewMessage> Messages { get; } = messages;
        public TaskCompletionSource<IReadOnlyList<AppendResult>> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Hold(TaskCompletionSource started, Task release) : Item
    {
        public TaskCompletionSource Started { get; } = started;
        public Task Release { get; } = release;
    }

    /// <summary>Queues an append; it completes when its transaction has committed (or failed).</summary>
    public Task<IReadOnlyList<AppendResult>> AppendAsync(string room, IReadOnlyList<NewMessage> messages)
    {
        var append = new Append(room, messages);
        if (!_queue.Writer.TryWrite(append))
        {
            throw new ObjectDisposedException(nameof(PostgresMessageStore));
        }

        return append.Done.Task;
    }

    /// <summary>
    /// Keeps the writer from starting its next transaction until <paramref name="release"/> completes (tests: what is
    /// queued meanwhile goes into one transaction). Completes when the writer holds.
    /// </summary>
    internal async Task HoldAsync(Task release)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite(new Hold(started, release)))
        {
            throw new ObjectDisposedException(nameof(PostgresMessageStore));
        }

        await started.Task.ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        var batch = new List<Append>();
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            int messages = 0;
            while (batch.Count < MaxAppends && (batch.Count == 0 || messages < MaxMessages) && _queue.Reader.TryRead(out Item? item))
            {
                if (item is Hold hold)
                {
                    hold.Started.TrySetResult();
                    await hold.Release.ConfigureAwait(false);
                    continue;
                }

                var append = (Append)item;
                batch.Add(append);
                messages += append.Messages.Count;
            }

            if (batch.Count > 0)
            {
                await WriteAsync(batch).ConfigureAwait(false);
                batch.Clear();
            }
        }
    }

    private async Task WriteAsync(List<Append> batch)
    {
        try
        {
            IReadOnlyList<AppendResult>[] results = await TransactAsync(batch).ConfigureAwait(false);
            for (int i = 0; i < batch.Count; i++)
            {
                batch[i].Done.TrySetResult(results[i]);
            }

            return;
        }
        catch (PostgresException) when (batch.Count > 1)
        {
            // A statement failed (an append's data, a deadlock PostgreSQL broke): rolled back as a whole, each append
            // runs again in a transaction of its own.
            Interlocked.Increment(ref _splitTransactions);
        }
        catch (Exception ex)
        {
            // One append, or the database out of reach (a connection that failed or timed out): one attempt each would
            // only repeat the wait, one append after another.
            foreach (Append append in batch)
            {
                append.Done.TrySetException(ex);
            }

            return;
        }

        foreach (Append append in batch)
        {
            try
            {
                append.Done.TrySetResult((await TransactAsync([append]).ConfigureAwait(false))[0]);
            }
            catch (Exception ex)
            {
                append.Done.TrySetException(ex);
            }
        }
    }

    /// <summary>
    /// Which of the (room $1, user $2, id $3) triples are stored already: one probe of the unique index per triple.
    /// Written as a join, PostgreSQL planned it as a hash join over the rooms' whole histories once a room held more
    /// rows than the batch has ids (its estimate for the index probes was higher than for scanning the room): every
    /// batch then read every stored message of its room, and the database's CPU, not its commits, bounded a room at
    /// ~5,000 publishes/s. The <c>LIMIT</c> keeps the subquery from being merged into a join, so it runs once per
    /// triple, as an index probe.
    /// </summary>
    internal const string FindStoredSql = """
        SELECT k.room, m.user_id, m.id, m.seq, m.name, m.text, m.time_ms
        FROM unnest($1::text[], $2::text[], $3::text[]) AS k(room, user_id, id)
        CROSS JOIN LATERAL (
            SELECT * FROM switchboard_messages s WHERE s.room = k.room AND s.user_id = k.user_id AND s.id = k.id LIMIT 1
        ) AS m
        """;

    private async Task<IReadOnlyList<AppendResult>[]> TransactAsync(List<Append> batch)
    {
        var rooms = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var keyRooms = new List<string>();
        var keyUsers = new List<string>();
        var keyIds = new List<string>();
        foreach (Append a in batch)
        {
            if (seen.Add(a.Room))
            {
                rooms.Add(a.Room);
            }

            foreach (NewMessage m in a.Messages)
            {
                keyRooms.Add(a.Room);
                keyUsers.Add(PgText.Encode(m.UserId));
                keyIds.Add(PgText.Encode(m.Id));
            }
        }

        Interlocked.Increment(ref _transactions);
        string[] roomNames = [.. rooms];
        string[] epochs = [.. rooms.Select(_ => PostgresMessageStore.NewEpoch())];
        await using NpgsqlConnection c = await _data.OpenConnectionAsync().ConfigureAwait(false);
        await using NpgsqlTransaction tx = await c.BeginTransactionAsync().ConfigureAwait(false);

        var heads = new Dictionary<string, RoomState>(StringComparer.Ordinal);
        var stored = new Dictionary<(string Room, string User, string Id), StoredMessage>();
        await using (NpgsqlBatch find = new(c, tx)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("""
                    INSERT INTO switchboard_rooms (name, epoch, head, first)
                    SELECT n, e, 0, 1 FROM unnest($1::text[], $2::text[]) AS x(n, e) ORDER BY n
                    ON CONFLICT (name) DO NOTHING
                    """)
                {
                    Parameters = { new() { Value = roomNames }, new() { Value = epochs } },
                },
                new NpgsqlBatchCommand("SELECT name, epoch, head, first FROM switchboard_rooms WHERE name = ANY($1) ORDER BY name FOR UPDATE")
                {
                    Parameters = { new() { Value = roomNames } },
                },
                new NpgsqlBatchCommand(FindStoredSql)
                {
                    Parameters = { new() { Value = keyRooms.ToArray() }, new() { Value = keyUsers.ToArray() }, new() { Value = keyIds.ToArray() } },
                },
            },
        })
        {
            await using NpgsqlDataReader r = await find.ExecuteReaderAsync().ConfigureAwait(false);
            await PostgresMessageStore.NextRowsAsync(r, default).ConfigureAwait(false); // the rooms' rows
            while (await r.ReadAsync().ConfigureAwait(false))
            {
                heads[r.GetString(0)] = new RoomState(r.GetString(1), r.GetInt64(2), r.GetInt64(3));
            }

            await r.NextResultAsync().ConfigureAwait(false);
            await PostgresMessageStore.NextRowsAsync(r, default).ConfigureAwait(false); // the triples stored already
            while (await r.ReadAsync().ConfigureAwait(false))
            {
                string room = r.GetString(0), user = r.GetString(1), id = r.GetString(2);
                stored[(room, user, id)] = new StoredMessage(r.GetInt64(3), PgText.Decode(id), PgText.Decode(user), PgText.Decode(r.GetString(4)),
                    PgText.Decode(r.GetString(5)), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(6)));
            }
        }

        // Offsets in issue order: a room's appends in this transaction follow one another.
        var results = new IReadOnlyList<AppendResult>[batch.Count];
        var insert = new MessageColumns();
        int key = 0;
        for (int b = 0; b < batch.Count; b++)
        {
            Append a = batch[b];
            RoomState state = heads[a.Room];
            long head = state.Head;
            var list = new AppendResult[a.Messages.Count];
            for (int i = 0; i < list.Length; i++, key++)
            {
                NewMessage m = a.Messages[i];
                var triple = (a.Room, keyUsers[key], keyIds[key]);
                if (stored.TryGetValue(triple, out StoredMessage? original))
                {
                    list[i] = new AppendResult(original, true); // stored before, or earlier in this transaction
                    continue;
                }

                var message = new StoredMessage(++head, m.Id, m.UserId, m.Name, m.Text, DateTimeOffset.FromUnixTimeMilliseconds(m.Time.ToUnixTimeMilliseconds()));
                stored[triple] = message;
                list[i] = new AppendResult(message, false);
                insert.Add(a.Room, message, keyIds[key], keyUsers[key]);
            }

            heads[a.Room] = state with { Head = head };
            results[b] = list;
        }

        if (insert.Count > 0)
        {
            await using NpgsqlBatch write = new(c, tx)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("""
                        INSERT INTO switchboard_messages (room, seq, id, user_id, name, text, time_ms)
                        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
                        """)
                    {
                        Parameters =
                        {
                            new() { Value = insert.Rooms.ToArray() }, new() { Value = insert.Offsets.ToArray() }, new() { Value = insert.Ids.ToArray() },
                            new() { Value = insert.Users.ToArray() }, new() { Value = insert.Names.ToArray() }, new() { Value = insert.Texts.ToArray() },
                            new() { Value = insert.Times.ToArray() },
                        },
                    },
                    new NpgsqlBatchCommand("UPDATE switchboard_rooms r SET head = x.head FROM unnest($1::text[], $2::bigint[]) AS x(name, head) WHERE r.name = x.name")
                    {
                        Parameters = { new() { Value = roomNames }, new() { Value = rooms.Select(n => heads[n].Head).ToArray() } },
                    },
                },
            };
            await write.ExecuteNonQueryAsync().ConfigureAwait(false);
        }

        await tx.CommitAsync().ConfigureAwait(false);
        return results;
    }

    /// <summary>The new messages of a transaction, column by column (PostgreSQL takes each as one array).</summary>
    private sealed class MessageColumns
    {
        public List<string> Rooms { get; } = [];
        public List<long> Offsets { get; } = [];
        public List<string> Ids { get; } = [];
        public List<string> Users { get; } = [];
        public List<string> Names { get; } = [];
        public List<string> Texts { get; } = [];
        public List<long> Times { get; } = [];

        public int Count => Rooms.Count;

        public void Add(string room, StoredMessage m, string storedId, string storedUser)
        {
            Rooms.Add(room);
            Offsets.Add(m.Offset);
            Ids.Add(storedId);
            Users.Add(storedUser);
            Names.Add(PgText.Encode(m.Name));
            Texts.Add(PgText.Encode(m.Text));
            Times.Add(m.Time.ToUnixTimeMilliseconds());
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }
}
