namespace Switchboard.Protocol;

/// <summary>Which end of the connection this side is. Decides the masking rules (RFC 6455 §5.1, §5.3).</summary>
public enum WebSocketRole
{
    /// <summary>The server: receives masked frames, sends unmasked frames.</summary>
    Server,
    /// <summary>The client: sends masked frames, receives unmasked frames.</summary>
    Client,
}

/// <summary>The connection state as seen by one side (RFC 6455 §4, §7).</summary>
public enum WebSocketState
{
    /// <summary>The opening handshake is in progress.</summary>
    Connecting,
    /// <summary>Data can flow both ways.</summary>
    Open,
    /// <summary>This side sent a close frame and waits for the peer's.</summary>
    CloseSent,
    /// <summary>The peer sent a close frame; this side has not yet answered.</summary>
    CloseReceived,
    /// <summary>The connection is closed.</summary>
    Closed,
}
