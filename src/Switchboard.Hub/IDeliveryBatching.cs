namespace Switchboard.Hub;

/// <summary>
/// Lets the transport write a room's fan-out of several messages to each member at once. A room calls
/// <see cref="Begin"/> before it delivers a batch (the messages of one commit, a page read to fill a hole) and
/// <see cref="End"/> after the last send of it, on the same thread with nothing asynchronous between the two; the
/// transport may hold every connection's writer in between and start each one once at End — one write per member per
/// batch instead of one per message. The server's implementation is the WebSocket engine's <c>SendBatch</c>.
/// </summary>
public interface IDeliveryBatching
{
    /// <summary>A batch of sends starts on this thread (calls may nest).</summary>
    void Begin();

    /// <summary>The batch ends: the transport writes what it held.</summary>
    void End();
}

/// <summary>No batching: every send is written as the transport would write it alone.</summary>
public sealed class NoDeliveryBatching : IDeliveryBatching
{
    /// <summary>The instance.</summary>
    public static readonly NoDeliveryBatching Instance = new();

    private NoDeliveryBatching()
    {
    }

    /// <inheritdoc />
    public void Begin()
    {
    }

    /// <inheritdoc />
    public void End()
    {
    }
}
