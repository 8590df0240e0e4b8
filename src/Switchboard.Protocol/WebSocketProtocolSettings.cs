namespace Switchboard.Protocol;

/// <summary>
/// The limits and timeouts a <see cref="WebSocketProtocol"/> applies. Immutable once built; one instance is shared by
/// every connection with the same settings.
/// </summary>
public sealed class WebSocketProtocolSettings
{
    /// <summary>Largest message accepted, by its length headers or inflated size; larger fails with 1009. Default 16 MiB.</summary>
    public long MaxMessageSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>How long the closing handshake may take from the moment it starts. Default 5 s.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Send a ping after this long without receiving anything. Null: no keepalive. Default 30 s.</summary>
    public TimeSpan? KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Fail when nothing arrives this long after a keepalive ping. Default 20 s.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>zlib level for permessage-deflate, 1–9. Default 6.</summary>
    public int CompressionLevel { get; init; } = 6;

    /// <summary>Messages shorter than this are sent uncompressed even when compression was negotiated. Default 128.</summary>
    public int CompressionThreshold { get; init; } = 128;

    /// <summary>Pooled zlib state for messages compressed or inflated without context takeover, shared by the connections using these settings.</summary>
    internal Extensions.DeflatePool DeflatePool { get; } = new();

    /// <summary>The defaults.</summary>
    public static WebSocketProtocolSettings Default { get; } = new();
}
