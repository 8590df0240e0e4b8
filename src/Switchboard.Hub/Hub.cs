using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Switchboard.Hub;

/// <summary>
/// The hub: rooms with durable history, membership and presence. Connections talk to it through
/// <see cref="HubSession"/> (the hub protocol) or, for the seed chat contract, through <see cref="SubscribeSeedAsync"/>
/// and <see cref="PublishAsync"/>.
/// </summary>
public sealed class Hub : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<Room>>> _rooms = new(StringComparer.Ordinal);
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private readonly ILogger _logger;

    /// <summary>Creates a hub over <paramref name="store"/>.</summary>
    public Hub(IMessageStore store, HubOptions? options = null, ILogger? logger = null)
    {
        Store = store;
        Options = options ?? new HubOptions();
        _logger = logger ?? NullLogger.Instance;
        _known.Add(SeedChat.Room);
        foreach (string room in Options.Rooms)
        {
            _known.Add(room);
        }
    }

    /// <summary>The message store.</summary>
    public IMessageStore Store { get; }

    /// <summary>The settings.</summary>
    public HubOptions Options { get; }

    /// <summary>Names of the rooms open in memory.</summary>
    public IReadOnlyCollection<string> OpenRooms => [.. _rooms.Keys];

    /// <summary>Loads the names of the rooms that already have a history (so they exist even when rooms are not auto-created).</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        IReadOnlyList<string> rooms = await Store.ListRoomsAsync(cancellationToken).ConfigureAwait(false);
        lock (_known)
        {
            foreach (string r in rooms)
            {
                _known.Add(r);
            }
        }
    }

    /// <summary>Starts a hub-protocol session for a new connection and sends it the <c>welcome</c>.</summary>
    public HubSession Connect(IHubConnection connection, HubIdentity identity, IHubAccess? access = null)
    {
        var session = new HubSession(this, connection, identity, access);
        connection.Send(HubProtocol.Build("welcome", w =>
        {
            w.WriteString("connectionId", connection.Id);
            w.WriteString("user", identity.UserId);
            w.WriteString("name", identity.Name);
            w.WriteString("serverTime", Options.Time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            w.WriteNumber("protocol", HubProtocol.Version);
        }));
        return session;
    }

    /// <summary>Appends a message to a room (creating it if allowed) and fans it out; completes once durable.</summary>
    public async Task<AppendResult> PublishAsync(string room, HubIdentity from, string text, string? id = null)
    {
        Room r = await GetRoomAsync(room, create: true).ConfigureAwait(false) ?? throw new InvalidOperationException($"Room '{room}' does not exist.");
        var done = new TaskCompletionSource<AppendResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        r.Post(new Room.Publish(new NewMessage(id ?? Guid.NewGuid().ToString("N"), from.UserId, from.Name, text, Options.Time.GetUtcNow()),
            (result, error) =>
            {
                if (error is not null)
                {
                    done.TrySetException(error);
                }
                else
                {
                    done.TrySetResult(result!.Value);
                }
            }));
        return await done.Task.ConfigureAwait(false);
    }

    /// <summary>Subscribes a seed-contract connection (/ws) to the live messages of the seed room. Dispose to unsubscribe.</summary>
    public async Task<IAsyncDisposable> SubscribeSeedAsync(IHubConnection connection)
    {
        Room room = (await GetRoomAsync(SeedChat.Room, create: true).ConfigureAwait(false))!;
        var subscriber = new Subscriber(connection, null);
        var started = new TaskCompletionSource<long?>(TaskCreationOptions.RunContinuationsAsynchronously);
        room.Post(new Room.JoinStart(subscriber, room.State.Head, null, null, started));
        long? cursor = await started.Task.ConfigureAwait(false);
        while (cursor is long c)
        {
            // Rare: the room moved past the cache between the snapshot and the join; go live from the store's head.
            var live = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            room.Post(new Room.GoLive(subscriber, room.State.Head, live));
            cursor = await live.Task.ConfigureAwait(false) ? null : c;
        }

        return new Unsubscriber(room, subscriber);
    }

    private sealed class Unsubscriber(Room room, Subscriber subscriber) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            room.Post(new Room.Leave(subscriber, done));
            await done.Task.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Maintenance, run periodically by the server: applies each open room's retention policy now, and drops the
    /// recent cache of rooms that have had no members and no activity for <see cref="HubOptions.IdleCacheRelease"/>.
    /// </summary>
    public async Task ApplyRetentionAsync()
    {
        foreach (var lazy in _rooms.Values)
        {
            Room room = await lazy.Value.ConfigureAwait(false);
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            room.Post(new Room.Trim(done));
            await done.Task.ConfigureAwait(false);
        }
    }

    /// <summary>The room, opening it; null when it does not exist and may not be created.</summary>
    internal async Task<Room?> GetRoomAsync(string name, bool create)
    {
        if (!_rooms.ContainsKey(name))
        {
            bool exists;
            lock (_known)
            {
                exists = _known.Contains(name);
            }

            if (!exists && !(create && Options.AutoCreateRooms))
            {
                return null;
            }
        }

        Lazy<Task<Room>> lazy = _rooms.GetOrAdd(name, n => new Lazy<Task<Room>>(() => Room.OpenAsync(n, Store, Options, _logger)));
        try
        {
            return await lazy.Value.ConfigureAwait(false);
        }
        catch
        {
            _rooms.TryRemove(new KeyValuePair<string, Lazy<Task<Room>>>(name, lazy)); // let a later attempt retry
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var lazy in _rooms.Values)
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully)
            {
                lazy.Value.Result.Stop();
            }
        }

        await Store.DisposeAsync().ConfigureAwait(false);
    }
}
