namespace Switchboard.Protocol;

/// <summary>
/// How a connection ended, like the browser's CloseEvent: the code and reason (the peer's, when a close frame
/// arrived; 1005 when it carried none; 1006 when the connection dropped without one) and whether the closing
/// handshake completed (RFC 6455 §7.1.5, §7.4).
/// </summary>
public readonly record struct WebSocketCloseStatus(ushort Code, string Reason, bool WasClean);

/// <summary>Why a connection was failed: a protocol violation by the peer, a timeout, or a transport error.</summary>
public readonly record struct WebSocketError(ushort CloseCode, string Message, Exception? Exception = null);
