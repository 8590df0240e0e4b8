using Microsoft.Extensions.Logging;
using Switchboard.Protocol;

namespace Switchboard.WebSockets;

/// <summary>What a connection does when its outbound queue would exceed <see cref="WebSocketConnectionOptions.MaxOutboundQueueBytes"/>.</summary>
public enum OutboundOverflowPolicy
{
    /// <summary>
    /// Drop everything still queued and close with 1008 "Outbound queue limit exceeded"; if the peer does
    /// not complete the closing handshake within <see cref="WebSocketConnectionOptions.CloseTimeout"/>, abort.
    /// The peer is too slow for the traffic and is cut off rather than slowing others or growing memory.
    /// </summary>
    Close,
    /// <summary>Refuse the message: the send returns <see cref="SendResult.QueueFull"/> and the caller decides.</summary>
    Reject,
}

/// <summary>The result of a send: backpressure is reported as a value, never by blocking.</summary>
public enum SendResult
{
    /// <summary>Queued; the writer will send it in order.</summary>
    Enqueued,
    /// <summary>The connection is closing or closed; nothing was queued.</summary>
    Closed,
    /// <summary>The outbound queue is full (<see cref="OutboundOverflowPolicy.Reject"/>); nothing was queued.</summary>
    QueueFull,
}

/// <summary>Settings for one connection (server or client side).</summary>
public sealed class WebSocketConnectionOptions
{
    /// <summary>Largest message accepted; larger fails with 1009 before the payload is read. Default 16 MiB.</summary>
    public long MaxMessageSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>
    /// Bytes that may wait in the outbound queue. Default 16 MiB. A single message is always admitted into an
    /// empty queue, so one message larger than the limit can still be sent.
    /// </summary>
    public long MaxOutboundQueueBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>What happens when the outbound queue is full. Default <see cref="OutboundOverflowPolicy.Close"/>.</summary>
    public OutboundOverflowPolicy OverflowPolicy { get; init; } = OutboundOverflowPolicy.Close;

    /// <summary>Send a ping after this long without receiving anything. Null disables keepalive. Default 30 s.</summary>
    public TimeSpan? KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Abort when nothing (not even the pong) arrives this long after a keepalive ping. Default 20 s.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>How long to wait for the peer's close frame (or TCP close) after sending ours. Default 5 s.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// zlib level for permessage-deflate, 1 (fastest) to 9 (smallest). Default 6 (zlib's default). Applies only to
    /// connections that negotiated compression.
    /// </summary>
    public int CompressionLevel { get; init; } = 6;

    /// <summary>
    /// Messages shorter than this many bytes are sent uncompressed even when compression was negotiated: DEFLATE's
    /// framing eats the saving on tiny payloads. Default 128. A message is also sent uncompressed when compressing
    /// would not make it smaller.
    /// </summary>
    public int CompressionThreshold { get; init; } = 128;

    /// <summary>Pull-mode receive (<see cref="WebSocketConnection.ReceiveAsync"/>): messages buffered ahead of the reader. Default 64.</summary>
    public int ReceiveQueueCapacity { get; init; } = 64;

    /// <summary>The heartbeat driving keepalive and close timeouts. Default <see cref="WebSocketHeartbeat.Shared"/>.</summary>
    public WebSocketHeartbeat? Heartbeat { get; init; }

    /// <summary>The endpoint these connections belong to (e.g. "/hub"), as the <c>endpoint</c> tag of their metrics.</summary>
    public string? EndpointName { get; init; }

    /// <summary>Where these connections are counted (a host's own, from its <c>IMeterFactory</c>). Null: not counted.</summary>
    public WebSocketMetrics? Metrics { get; init; }

    /// <summary>Logger for connection-level events.</summary>
    public ILogger? Logger { get; init; }

    internal static WebSocketConnectionOptions Default { get; } = new();

    /// <summary>The protocol's share of these settings, built once and shared by every connection using them.</summary>
    internal WebSocketProtocolSettings ProtocolSettings => _protocolSettings ??= new WebSocketProtocolSettings
    {
        MaxMessageSize = MaxMessageSize,
        CloseTimeout = CloseTimeout,
        KeepAliveInterval = KeepAliveInterval,
        KeepAliveTimeout = KeepAliveTimeout,
        CompressionLevel = CompressionLevel,
        CompressionThreshold = CompressionThreshold,
    };

    private WebSocketProtocolSettings? _protocolSettings;
}
