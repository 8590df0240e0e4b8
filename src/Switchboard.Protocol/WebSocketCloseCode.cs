namespace Switchboard.Protocol;

/// <summary>
/// Close status codes (RFC 6455 §7.4.1, IANA "WebSocket Close Code Number Registry").
/// docs/protocol.md lists which of these Switchboard sends and when.
/// </summary>
public static class WebSocketCloseCode
{
    /// <summary>Normal closure.</summary>
    public const ushort NormalClosure = 1000;
    /// <summary>The endpoint is going away (server shutdown, page navigation).</summary>
    public const ushort GoingAway = 1001;
    /// <summary>The peer violated the protocol.</summary>
    public const ushort ProtocolError = 1002;
    /// <summary>The endpoint cannot accept this data type.</summary>
    public const ushort UnsupportedData = 1003;
    /// <summary>Reserved: no status code was present. Never sent on the wire (§7.4.1).</summary>
    public const ushort NoStatusReceived = 1005;
    /// <summary>Reserved: closed without a close frame. Never sent on the wire (§7.4.1).</summary>
    public const ushort AbnormalClosure = 1006;
    /// <summary>Data inconsistent with the message type (e.g. invalid UTF-8 in a text message).</summary>
    public const ushort InvalidPayloadData = 1007;
    /// <summary>A message violated the endpoint's policy.</summary>
    public const ushort PolicyViolation = 1008;
    /// <summary>A message is too big to process.</summary>
    public const ushort MessageTooBig = 1009;
    /// <summary>The client expected the server to negotiate an extension.</summary>
    public const ushort MandatoryExtension = 1010;
    /// <summary>The server met an unexpected condition.</summary>
    public const ushort InternalError = 1011;
    /// <summary>The service is restarting (IANA registry).</summary>
    public const ushort ServiceRestart = 1012;
    /// <summary>Try again later (IANA registry).</summary>
    public const ushort TryAgainLater = 1013;
    /// <summary>Bad gateway (IANA registry).</summary>
    public const ushort BadGateway = 1014;
    /// <summary>Reserved: TLS handshake failure. Never sent on the wire (§7.4.1).</summary>
    public const ushort TlsHandshake = 1015;

    /// <summary>
    /// True if <paramref name="code"/> may appear in a close frame on the wire (§7.4.1, §7.4.2):
    /// 1000–1003, 1007–1014 and the 3000–4999 ranges for libraries, frameworks and applications.
    /// 0–999, 1004–1006, 1015 and the unassigned 1016–2999 are invalid.
    /// </summary>
    public static bool IsValidOnWire(int code) =>
        code is (>= 1000 and <= 1003) or (>= 1007 and <= 1014) or (>= 3000 and <= 4999);
}
