using System.Diagnostics;

namespace Switchboard.WebSockets;

/// <summary>
/// The engine's traces on the ActivitySource "Switchboard.WebSockets": <c>handshake</c>, from a complete request head to
/// the 101 (or to handing the request to HTTP), with the path and the outcome. With no listener it costs one check.
/// </summary>
public static class WebSocketTracing
{
    /// <summary>The source's name.</summary>
    public const string SourceName = "Switchboard.WebSockets";

    /// <summary>The source hosts start the handshake activity on.</summary>
    public static ActivitySource Source { get; } = new(SourceName);
}
