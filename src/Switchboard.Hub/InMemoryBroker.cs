using System.Collections.Concurrent;

namespace Switchboard.Hub;

/// <summary>
/// The broker of one process. <see cref="Local"/> serves a single hub (not distributed: the hub never uses it); an
/// instance created with <c>distributed: true</c> can be shared by several hubs in one process, which then behave as
/// nodes of one deployment (tests, and the reference the Redis broker is checked against).
/// </summary>
public sealed class InMemoryBroker(bool distributed = false) : IBroker
{
    private readonly ConcurrentDictionary<string, ImmutableHandlers> _rooms = new(StringComparer.Ordinal);

    /// <summary>A broker for a single hub.</summary>
    public static InMemoryBroker Local => new();

    private sealed record ImmutableHandlers(Action<StoredMessage>[] Handlers);

    /// <inheritdoc />
    public bool IsDistributed { get; } = distributed;

    /// <inheritdoc />
    public ValueTask PublishAsync(string room, StoredMessage message)
    {
        if (_rooms.TryGetValue(room, out ImmutableHandlers? subscribers))
        {
            foreach (Action<StoredMessage> handler in subscribers.Handlers)
            {
                handler(message);
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IAsyncDisposable> SubscribeAsync(string room, Action<StoredMessage> handler, CancellationToken cancellationToken = default)
    {
        _rooms.AddOrUpdate(room, _ => new([handler]), (_, h) => new([.. h.Handlers, handler]));
        return ValueTask.FromResult<IAsyncDisposable>(new Subscription(this, room, handler));
    }

    private sealed class Subscription(InMemoryBroker broker, string room, Action<StoredMessage> handler) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            while (broker._rooms.TryGetValue(room, out ImmutableHandlers? current))
            {
                Action<StoredMessage>[] rest = [.. current.Handlers.Where(h => h != handler)];
                bool done = rest.Length == 0
                    ? broker._rooms.TryRemove(new KeyValuePair<string, ImmutableHandlers>(room, current))
                    : broker._rooms.TryUpdate(room, new ImmutableHandlers(rest), current);
                if (done)
                {
                    break;
                }
            }

            return ValueTask.CompletedTask;
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _rooms.Clear();
        return ValueTask.CompletedTask;
    }
}
