namespace Switchboard.Hub;

/// <summary>Close codes the hub sends (application range 4000–4999; docs/protocol.md lists every close code).</summary>
public static class HubCloseCodes
{
    /// <summary>The server (its API or the host app) disconnected the user.</summary>
    public const ushort Disconnected = 4003;

    /// <summary>The reason sent with <see cref="Disconnected"/>.</summary>
    public const string DisconnectedReason = "Disconnected by the server";
}
