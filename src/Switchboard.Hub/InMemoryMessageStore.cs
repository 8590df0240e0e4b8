namespace Switchboard.Hub;

/// <summary>
/// <see cref="IMessageStore"/> in process memory: for tests and for running without persistence.
/// "Durable" here means: until the process ends.
/// </summary>
public sealed class InMemoryMessageStore : IMessageStore
{
    private readonly Dictionary<string, RoomData> _rooms = new(StringComparer.Ordinal);

    private sealed class RoomData(string epoch)
    {
        public string Epoch { get; } = epoch;
        public List<StoredMessage> Messages { get; } = [];
        public Dictionary<(string User, string Id), StoredMessage> ById { get; } = [];
        public long Head { get; set; }
        public long First => Messages.Count > 0 ? Messages[0].Offset : Head + 1;
        public RoomState State => new(Epoch, Head, First);
    }

    private static string NewEpoch() => Guid.NewGuid().ToString("N")[..12];

    private RoomData Get(string room)
    {
        if (!_rooms.TryGetValue(room, out RoomData? data))
        {
            data = new RoomData(NewEpoch());
            _rooms[room] = data;
        }

        return data;
    }

    /// <inheritdoc />
    public ValueTask<RoomState> OpenRoomAsync(string room, CancellationToken cancellationToken = default)
    {
        lock (_rooms)
        {
            return ValueTask.FromResult(Get(room).State);
        }
    }

    /// <inheritdoc />
    public ValueTask<RoomState> ResetAsync(string room, CancellationToken cancellationToken = default)
    {
        lock (_rooms)
        {
            var fresh = new RoomData(NewEpoch());
            _rooms[room] = fresh;
            return ValueTask.FromResult(fresh.State);
        }
    }

    /// <inheritdoc />
    public bool AppendsInIssueOrder => true; // appends complete before they return

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<AppendResult>> AppendAsync(string room, IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default)
    {
        lock (_rooms)
        {
            RoomData data = Get(room);
            var results = new List<AppendResult>(messages.Count);
            foreach (NewMessage m in messages)
            {
                if (data.ById.TryGetValue((m.UserId, m.Id), out StoredMessage? existing))
                {
                    results.Add(new AppendResult(existing, true));
                    continue;
                }

                var stored = new StoredMessage(++data.Head, m.Id, m.UserId, m.Name, m.Text, m.Time);
                data.Messages.Add(stored);
                data.ById[(m.UserId, m.Id)] = stored;
                results.Add(new AppendResult(stored, false));
            }

            return ValueTask.FromResult<IReadOnlyList<AppendResult>>(results);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<StoredMessage>> ReadAfterAsync(string room, long afterOffset, int limit, CancellationToken cancellationToken = default)
    {
        lock (_rooms)
        {
            List<StoredMessage> list = Get(room).Messages;
            int start = afterOffset == long.MaxValue ? list.Count : LowerBound(list, afterOffset + 1); // + 1 would wrap to the start
            return ValueTask.FromResult<IReadOnlyList<StoredMessage>>(list.GetRange(start, Math.Min(limit, list.Count - start)));
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<StoredMessage>> ReadBeforeAsync(string room, long beforeOffset, int limit, CancellationToken cancellationToken = default)
    {
        lock (_rooms)
        {
            List<StoredMessage> list = Get(room).Messages;
            int end = LowerBound(list, beforeOffset);
            int start = Math.Max(0, end - limit);
            return ValueTask.FromResult<IReadOnlyList<StoredMessage>>(list.GetRange(start, end - start));
        }
    }

    /// <inheritdoc />
    public ValueTask<RoomState> TrimAsync(string room, RetentionPolicy policy, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        lock (_rooms)
        {
            RoomData data = Get(room);
            int remove = 0;
            if (policy.MaxCount is long max && data.Messages.Count > max)
            {
                remove = (int)(data.Messages.Count - max);
            }

            if (policy.MaxAge is TimeSpan age)
            {
                while (remove < data.Messages.Count && data.Messages[remove].Time < now - age)
                {
                    remove++;
                }
            }

            foreach (StoredMessage m in data.Messages.Take(remove))
            {
                data.ById.Remove((m.UserId, m.Id));
            }

            data.Messages.RemoveRange(0, remove);
            return ValueTask.FromResult(data.State);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<string>> ListRoomsAsync(CancellationToken cancellationToken = default)
    {
        lock (_rooms)
        {
            return ValueTask.FromResult<IReadOnlyList<string>>([.. _rooms.Keys]);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static int LowerBound(List<StoredMessage> list, long offset)
    {
        int lo = 0, hi = list.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (list[mid].Offset < offset)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}
