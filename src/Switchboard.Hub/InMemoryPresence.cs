using System.Collections.Concurrent;

namespace Switchboard.Hub;

/// <summary>
/// Presence in one process. <see cref="Local"/> serves a single hub (not distributed). <see cref="Medium"/> is shared
/// state that several hubs in one process reach through their own <see cref="InMemoryPresence"/> node handles — nodes
/// of one deployment in tests, with liveness on an injected clock so a "dead" node can be simulated.
/// </summary>
public sealed class InMemoryPresence : IPresence
{
    private readonly Medium? _medium;
    private readonly ITimer? _heartbeat;

    private InMemoryPresence(Medium? medium, string nodeId)
    {
        _medium = medium;
        NodeId = nodeId;
        if (medium is not null)
        {
            medium.Beat(nodeId);
            _heartbeat = medium.Time.CreateTimer(static s => ((InMemoryPresence)s!).Beat(), this, medium.NodeTimeout / 3, medium.NodeTimeout / 3);
        }
    }

    /// <summary>Presence for a single hub.</summary>
    public static InMemoryPresence Local => new(null, "local");

    /// <summary>A node handle onto a shared <paramref name="medium"/>.</summary>
    public static InMemoryPresence Node(Medium medium) => new(medium, Guid.NewGuid().ToString("N")[..12]);

    private void Beat()
    {
        if (!Stopped)
        {
            _medium!.Beat(NodeId);
        }
    }

    /// <summary>
    /// Stops this node as a killed process would: it no longer renews its liveness and no longer writes, and nothing it
    /// recorded is removed. (A node that still wrote could put its connections back after the others dropped them.)
    /// </summary>
    public void Kill() => Stopped = true;

    private bool Stopped { get; set; }

    /// <inheritdoc />
    public bool IsDistributed => _medium is not null;

    /// <inheritdoc />
    public string NodeId { get; }

    /// <inheritdoc />
    public TimeSpan NodeTimeout => _medium?.NodeTimeout ?? TimeSpan.MaxValue;

    /// <inheritdoc />
    public ValueTask AddAsync(string room, string connection, HubIdentity identity)
    {
        if (!Stopped)
        {
            _medium?.Change(room, new PresenceChange(connection, identity, Joined: true));
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask RemoveAsync(string room, string connection, HubIdentity identity)
    {
        if (!Stopped)
        {
            _medium?.Change(room, new PresenceChange(connection, identity, Joined: false));
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyDictionary<string, HubIdentity>> SnapshotAsync(string room) =>
        ValueTask.FromResult<IReadOnlyDictionary<string, HubIdentity>>(_medium?.Snapshot(room) ?? new Dictionary<string, HubIdentity>());

    /// <inheritdoc />
    public ValueTask<IAsyncDisposable> SubscribeAsync(string room, Action<PresenceChange> handler) =>
        ValueTask.FromResult(_medium?.Subscribe(room, handler) ?? (IAsyncDisposable)new Medium.Nothing());

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _heartbeat?.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>The shared state of in-process nodes: connections per room, each node's last heartbeat, subscribers.</summary>
    public sealed class Medium(TimeProvider? time = null, TimeSpan? nodeTimeout = null)
    {
        private readonly ConcurrentDictionary<string, long> _beats = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Dictionary<string, HubIdentity>> _rooms = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<Action<PresenceChange>>> _subscribers = new(StringComparer.Ordinal);

        /// <summary>The clock heartbeats are measured on.</summary>
        public TimeProvider Time { get; } = time ?? TimeProvider.System;

        /// <summary>How long a node that stopped beating still counts as alive. Default 15 s.</summary>
        public TimeSpan NodeTimeout { get; } = nodeTimeout ?? TimeSpan.FromSeconds(15);

        internal void Beat(string node) => _beats[node] = Time.GetTimestamp();

        private bool Alive(string connection)
        {
            string node = connection[..connection.IndexOf(':', StringComparison.Ordinal)];
            return _beats.TryGetValue(node, out long at) && Time.GetElapsedTime(at) < NodeTimeout;
        }

        internal void Change(string room, PresenceChange change)
        {
            Action<PresenceChange>[] handlers;
            lock (_rooms)
            {
                if (!_rooms.TryGetValue(room, out Dictionary<string, HubIdentity>? connections))
                {
                    _rooms[room] = connections = new(StringComparer.Ordinal);
                }

                if (change.Joined)
                {
                    connections[change.Connection] = change.Identity;
                }
                else
                {
                    connections.Remove(change.Connection);
                }

                handlers = _subscribers.TryGetValue(room, out List<Action<PresenceChange>>? list) ? [.. list] : [];
            }

            foreach (Action<PresenceChange> h in handlers)
            {
                h(change);
            }
        }

        internal Dictionary<string, HubIdentity> Snapshot(string room)
        {
            lock (_rooms)
            {
                if (!_rooms.TryGetValue(room, out Dictionary<string, HubIdentity>? connections))
                {
                    return new(StringComparer.Ordinal);
                }

                foreach (string dead in connections.Keys.Where(c => !Alive(c)).ToArray())
                {
                    connections.Remove(dead);
                }

                return new(connections, StringComparer.Ordinal);
            }
        }

        internal IAsyncDisposable Subscribe(string room, Action<PresenceChange> handler)
        {
            lock (_rooms)
            {
                if (!_subscribers.TryGetValue(room, out List<Action<PresenceChange>>? list))
                {
                    _subscribers[room] = list = [];
                }

                list.Add(handler);
            }

            return new Unsubscribe(this, room, handler);
        }

        private sealed class Unsubscribe(Medium medium, string room, Action<PresenceChange> handler) : IAsyncDisposable
        {
            public ValueTask DisposeAsync()
            {
                lock (medium._rooms)
                {
                    if (medium._subscribers.TryGetValue(room, out List<Action<PresenceChange>>? list))
                    {
                        list.Remove(handler);
                    }
                }

                return ValueTask.CompletedTask;
            }
        }

        internal sealed class Nothing : IAsyncDisposable
        {
            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
