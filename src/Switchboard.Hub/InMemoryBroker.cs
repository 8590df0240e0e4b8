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

    private ImmutableControlHandlers _control = new([]);

    private sealed record ImmutableControlHandlers(Action<BrokerControl>[] Handlers);

    /// <inheritdoc />
    public ValueTask PublishControlAsync(BrokerControl control)
    {
        foreach (Action<BrokerControl> handler in Volatile.Read(ref _control).Handlers)
        {
            handler(control);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IAsyncDisposable> SubscribeControlAsync(Action<BrokerControl> handler, CancellationToken cancellationToken = default)
    {
        Change(h => [.. h, handler]);
        return ValueTask.FromResult<IAsyncDisposable>(new ControlSubscription(this, handler));
    }

    private void Change(Func<Action<BrokerControl>[], Action<BrokerControl>[]> change)
    {
        while (true)
        {
            ImmutableControlHandlers current = Volatile.Read(ref _control);
            if (Interlocked.CompareExchange(ref _control, new ImmutableControlHandlers(change(current.Handlers)), current) == current)
            {
                return;
            }
        }
    }

    private sealed class ControlSubscription(InMemoryBroker broker, Action<BrokerControl> handler) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            broker.Change(h => [.. h.Where(x => x != handler)]);
            return ValueTask.CompletedTask;
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _rooms.Clear();
        _control = new([]);
        return ValueTask.CompletedTask;
    }
}
