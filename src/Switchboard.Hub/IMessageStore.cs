namespace Switchboard.Hub;

/// <summary>A message as stored: its offset in the room, the sender's id for it, who sent it, what and when.</summary>
public sealed record StoredMessage(long Offset, string Id, string UserId, string Name, string Text, DateTimeOffset Time);

/// <summary>A message to append. <see cref="Id"/> is the client's id for it (idempotency key with the user).</summary>
public sealed record NewMessage(string Id, string UserId, string Name, string Text, DateTimeOffset Time);

/// <summary>The outcome of appending one message.</summary>
/// <param name="Message">The stored message (for a duplicate: the one stored the first time).</param>
/// <param name="Duplicate">True when the same user had already appended a message with this id to this room.</param>
public readonly record struct AppendResult(StoredMessage Message, bool Duplicate);

/// <summary>
/// Where a room's history stands. <see cref="Epoch"/> identifies this history: it changes only if the history
/// is lost and started over, so offsets from another epoch mean nothing here. <see cref="Head"/> is the last
/// offset assigned (0 when none); <see cref="First"/> the lowest offset still stored (Head + 1 when empty).
/// </summary>
public readonly record struct RoomState(string Epoch, long Head, long First);

/// <summary>Per-room retention: keep at most <see cref="MaxCount"/> messages and none older than <see cref="MaxAge"/>.</summary>
public sealed record RetentionPolicy(long? MaxCount, TimeSpan? MaxAge)
{
    /// <summary>Keeps everything (for configuration binding).</summary>
    public RetentionPolicy()
        : this(null, null)
    {
    }

    /// <summary>Keep everything.</summary>
    public static RetentionPolicy Unlimited { get; } = new(null, null);
}

/// <summary>
/// Durable, per-room message history.
/// <para>Contract (every implementation passes the same contract test suite):</para>
/// <list type="bullet">
/// <item>Offsets are per room, start at 1, and are dense and strictly increasing in append order: no gaps, no reuse.</item>
/// <item><see cref="AppendAsync"/> is atomic for its batch and durable when it returns: an acknowledged message
/// survives a crash of the process.</item>
/// <item>Appends are idempotent per (room, user id, message id): a repeat returns the original message with
/// <see cref="AppendResult.Duplicate"/> set and stores nothing.</item>
/// <item>Reads are stable: a page read twice returns the same messages; retention only removes a prefix
/// (the oldest messages), so <see cref="RoomState.First"/> only grows — within an epoch: <see cref="ResetAsync"/> deletes
/// everything and starts a new epoch, the only way offsets restart.</item>
/// <item>Implementations are safe for concurrent use; appends to one room are issued by one caller (the hub's room
/// worker), one at a time unless the store applies them in issue order (<see cref="AppendsInIssueOrder"/>).</item>
/// </list>
/// </summary>
public interface IMessageStore : IAsyncDisposable
{
    /// <summary>Opens a room's history, creating it (with a fresh epoch) when it does not exist.</summary>
    ValueTask<RoomState> OpenRoomAsync(string room, CancellationToken cancellationToken = default);

    /// <summary>Appends a batch atomically; returns one result per message, in order.</summary>
    ValueTask<IReadOnlyList<AppendResult>> AppendAsync(string room, IReadOnlyList<NewMessage> messages, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="limit"/> messages with offset greater than <paramref name="afterOffset"/>, ascending.</summary>
    ValueTask<IReadOnlyList<StoredMessage>> ReadAfterAsync(string room, long afterOffset, int limit, CancellationToken cancellationToken = default);

    /// <summary>The (up to) <paramref name="limit"/> messages just before <paramref name="beforeOffset"/>, ascending.</summary>
    ValueTask<IReadOnlyList<StoredMessage>> ReadBeforeAsync(string room, long beforeOffset, int limit, CancellationToken cancellationToken = default);

    /// <summary>Applies retention to a room; returns its state afterwards.</summary>
    ValueTask<RoomState> TrimAsync(string room, RetentionPolicy policy, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes a room's history — its messages and the ids appends were deduplicated by — and starts it over in a new
    /// epoch (Head 0, First 1: the next append gets offset 1); creates the room when it does not exist. Atomic: an append
    /// issued meanwhile (by another node) lands wholly before (and is deleted) or wholly after (in the new epoch).
    /// </summary>
    ValueTask<RoomState> ResetAsync(string room, CancellationToken cancellationToken = default);

    /// <summary>Names of all rooms with a history.</summary>
    ValueTask<IReadOnlyList<string>> ListRoomsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// True when appends to one room issued one after another, each before the previous one completed, are applied in
    /// the order they were issued (offsets follow that order) — a store with a single ordered writer. The hub then keeps
    /// several appends per room in flight, so that a room's next publishes wait in the store's queue instead of in the
    /// room's; otherwise it issues one at a time. Default false.
    /// </summary>
    bool AppendsInIssueOrder => false;
}
