namespace Switchboard.Hub;

/// <summary>A connection entering or leaving a room, somewhere in the deployment.</summary>
/// <param name="Connection">The connection's key, unique across nodes (node id, then the connection id).</param>
/// <param name="Identity">Whose connection it is.</param>
/// <param name="Joined">True when it entered, false when it left.</param>
public sealed record PresenceChange(string Connection, HubIdentity Identity, bool Joined);

/// <summary>
/// Who is in a room across every node of a deployment, by connection (a user with two tabs on two nodes is two
/// connections and one member).
/// <para>Contract (every implementation passes the same contract test suite):</para>
/// <list type="bullet">
/// <item><see cref="AddAsync"/> and <see cref="RemoveAsync"/> record a connection of this node and tell every node
/// subscribed to the room (this one included) with a <see cref="PresenceChange"/>; changes may arrive late, twice or
/// out of order, so a node applies them as set operations and reconciles with <see cref="SnapshotAsync"/> now and then.</item>
/// <item><see cref="SnapshotAsync"/> lists the connections present now on nodes that are alive. A node that stops
/// (crash, kill -9, partition) stops renewing its liveness; within <see cref="NodeTimeout"/> its connections leave every
/// snapshot, and are removed from the shared state.</item>
/// <item>Failures of the shared medium are not thrown at the caller of Add/Remove (presence is advisory: the next
/// reconcile repairs it); <see cref="SnapshotAsync"/> may throw, and the caller keeps its last view.</item>
/// <item><see cref="IsDistributed"/> is false for the presence of a single hub: the hub then keeps presence in memory only.</item>
/// </list>
/// </summary>
public interface IPresence : IAsyncDisposable
{
    /// <summary>True when other nodes share this presence (the hub then publishes, subscribes and reconciles).</summary>
    bool IsDistributed { get; }

    /// <summary>This node's id: the prefix of its connections' keys.</summary>
    string NodeId { get; }

    /// <summary>How long after a node stops its connections leave every snapshot.</summary>
    TimeSpan NodeTimeout { get; }

    /// <summary>Records a connection of this node in <paramref name="room"/> and announces it.</summary>
    ValueTask AddAsync(string room, string connection, HubIdentity identity);

    /// <summary>Removes a connection of this node from <paramref name="room"/> and announces it.</summary>
    ValueTask RemoveAsync(string room, string connection, HubIdentity identity);

    /// <summary>The connections in <paramref name="room"/> on live nodes.</summary>
    ValueTask<IReadOnlyDictionary<string, HubIdentity>> SnapshotAsync(string room);

    /// <summary>Starts receiving the room's presence changes; dispose the result to stop.</summary>
    ValueTask<IAsyncDisposable> SubscribeAsync(string room, Action<PresenceChange> handler);
}
