namespace Switchboard.Hub;

/// <summary>
/// What kind of room a room is, as metrics tag it (<c>room_kind</c>): a handful of values, never the room's name, so a
/// dashboard can tell the rooms an operator set up from those users created without a label per room.
/// </summary>
public enum RoomKind
{
    /// <summary>The room that always exists (<see cref="Hub.DefaultRoom"/>, the seed chat's).</summary>
    Default,

    /// <summary>A room listed in <see cref="HubOptions.Rooms"/>.</summary>
    Configured,

    /// <summary>A room created on first use.</summary>
    Dynamic,
}

/// <summary>Helpers for <see cref="RoomKind"/>.</summary>
public static class RoomKinds
{
    /// <summary>The kind of <paramref name="room"/> under <paramref name="options"/>.</summary>
    public static RoomKind Of(string room, HubOptions options) =>
        room == Hub.DefaultRoom ? RoomKind.Default : options.Rooms.Contains(room) ? RoomKind.Configured : RoomKind.Dynamic;

    /// <summary>The tag value: <c>default</c>, <c>configured</c> or <c>dynamic</c>.</summary>
    public static string TagValue(this RoomKind kind) => kind switch
    {
        RoomKind.Default => "default",
        RoomKind.Configured => "configured",
        _ => "dynamic",
    };
}
