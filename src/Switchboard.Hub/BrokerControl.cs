namespace Switchboard.Hub;

/// <summary>
/// A control message between the nodes of one deployment: something every node must do for a request one node got.
/// <see cref="Kind"/> says what (<see cref="ResetRoom"/>, <see cref="DisconnectUser"/>), <see cref="Subject"/> to what
/// (a room, a user). Nodes ignore kinds they do not know (a newer node's).
/// </summary>
/// <param name="Kind">What to do.</param>
/// <param name="Subject">The room or user it applies to.</param>
public sealed record BrokerControl(string Kind, string Subject)
{
    /// <summary>The room's history was deleted: reload its state from the store and tell its members (<c>reset</c>).</summary>
    public const string ResetRoom = "reset";

    /// <summary>Close the user's hub connections on this node.</summary>
    public const string DisconnectUser = "disconnect";
}
