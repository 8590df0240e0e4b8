namespace Switchboard.Hub;

/// <summary>
/// Carries committed messages between the servers (nodes) of one deployment, so that a member connected to any node
/// receives what was published through any other.
/// <para>Contract (every implementation passes the same contract test suite):</para>
/// <list type="bullet">
/// <item><see cref="PublishAsync"/> is called only with messages the store has committed; it hands the message to every
/// node subscribed to the room at that moment, this node included.</item>
/// <item>Delivery is best-effort and may reorder, duplicate or lose messages (a broker restart, a dropped subscription):
/// the hub orders by offset, drops duplicates, and fills every hole from the store, so a broker never decides what a
/// member sees, only how soon.</item>
/// <item>Publishing never throws for a broker that is down and never waits for it long: the commit, and its ack, do not
/// depend on the broker.</item>
/// <item>A subscription's handler runs on the broker's thread and must not block; it receives every message published to
/// the room after <see cref="SubscribeAsync"/> returned, while the broker is reachable.</item>
/// <item>Control messages (<see cref="PublishControlAsync"/>) go to every node subscribed with
/// <see cref="SubscribeControlAsync"/>, this node included, with the same best-effort delivery: what they ask for must
/// also happen without them, only later (a node reloads a room's state from the store on its periodic head check).</item>
/// <item><see cref="IsDistributed"/> is false for a broker that only ever serves this one hub: the hub then skips the broker
/// entirely (its own fan-out already reached every member).</item>
/// </list>
/// </summary>
public interface IBroker : IAsyncDisposable
{
    /// <summary>True when other nodes may publish to the same rooms (the hub then publishes, subscribes and checks for holes).</summary>
    bool IsDistributed { get; }

    /// <summary>Hands a committed message of <paramref name="room"/> to every subscribed node. Never throws for a broker that is down.</summary>
    ValueTask PublishAsync(string room, StoredMessage message);

    /// <summary>Starts receiving the messages published to <paramref name="room"/>; dispose the result to stop.</summary>
    ValueTask<IAsyncDisposable> SubscribeAsync(string room, Action<StoredMessage> handler, CancellationToken cancellationToken = default);

    /// <summary>Hands a control message to every node subscribed to control messages. Never throws for a broker that is down.</summary>
    ValueTask PublishControlAsync(BrokerControl control);

    /// <summary>Starts receiving control messages (from every node, this one included); dispose the result to stop.</summary>
    ValueTask<IAsyncDisposable> SubscribeControlAsync(Action<BrokerControl> handler, CancellationToken cancellationToken = default);
}
