namespace Switchboard.Hub;

/// <summary>A room was not created: the server holds <see cref="HubOptions.MaxRooms"/> rooms already.</summary>
public sealed class RoomLimitReachedException(string message) : Exception(message);
