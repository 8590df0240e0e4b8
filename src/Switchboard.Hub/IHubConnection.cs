namespace Switchboard.Hub;

/// <summary>
/// An encoded server-to-client message (UTF-8 JSON text), built once and sent to any number of connections.
/// The transport may cache its own wire form of it (see <see cref="GetOrCreateTransportForm{T}"/>; e.g. a prepared frame), so a
/// message fanned out to a thousand members is framed once.
/// </summary>
public sealed class OutboundMessage
{
    /// <summary>
    /// The bytes an encoder may leave free in front of the JSON in its buffer (see <see cref="WithHeadroom"/>), so that a
    /// transport frames the message in place instead of copying it — the WebSocket engine's header room
    /// (<c>PreparedFrame.HeaderRoom</c>; a test checks that the two agree).
    /// </summary>
    public const int Headroom = 14;

    private object? _transportCache;

    /// <summary>A message of exactly these bytes.</summary>
    public OutboundMessage(byte[] utf8Json) => Utf8Json = utf8Json;

    private OutboundMessage(byte[] buffer, int offset)
    {
        Utf8Json = buffer.AsMemory(offset);
        HeadroomBuffer = buffer;
    }

    /// <summary>A message whose JSON fills <paramref name="buffer"/> after <see cref="Headroom"/> free bytes.</summary>
    public static OutboundMessage WithHeadroom(byte[] buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ArgumentOutOfRangeException.ThrowIfLessThan(buffer.Length, Headroom);
        return new OutboundMessage(buffer, Headroom);
    }

    /// <summary>
    /// The whole buffer when the JSON lies after <see cref="Headroom"/> free bytes (to its end): a transport may write its
    /// framing into those bytes, and nothing else. Null when the message was made without headroom.
    /// </summary>
    public byte[]? HeadroomBuffer { get; }

    /// <summary>The UTF-8 JSON text.</summary>
    public ReadOnlyMemory<byte> Utf8Json { get; }

    /// <summary>Size in bytes.</summary>
    public int Length => Utf8Json.Length;

    /// <summary>Returns the transport's cached wire form, creating it once (thread-safe, first one wins).</summary>
    public T GetOrCreateTransportForm<T>(Func<OutboundMessage, T> create) where T : class
    {
        if (Volatile.Read(ref _transportCache) is T cached)
        {
            return cached;
        }

        T created = create(this);
        return Interlocked.CompareExchange(ref _transportCache, created, null) as T ?? created;
    }

    /// <summary>The JSON as a string (for logs and tests).</summary>
    public override string ToString() => System.Text.Encoding.UTF8.GetString(Utf8Json.Span);
}

/// <summary>
/// The hub's view of one client connection. The server supplies the implementation (over its WebSocket engine);
/// the hub never sees sockets. Sends never block: they queue and report whether the message was accepted.
/// </summary>
public interface IHubConnection
{
    /// <summary>A process-unique id.</summary>
    string Id { get; }

    /// <summary>Queues a message; false when the connection is closing or its queue is full.</summary>
    bool Send(OutboundMessage message);

    /// <summary>
    /// Queues a room's live message unless the connection is already this far behind; false means "not sent":
    /// the hub then takes the member off the live stream and replays from history once it has drained.
    /// </summary>
    bool TrySendLive(OutboundMessage message, long softLimitBytes);

    /// <summary>Bytes waiting to be written to this connection.</summary>
    long QueuedBytes { get; }

    /// <summary>Completes when the outbound queue has drained (or the connection has closed).</summary>
    Task WhenDrainedAsync();

    /// <summary>Closes the connection with a WebSocket close code and reason.</summary>
    void Close(ushort code, string reason);
}
