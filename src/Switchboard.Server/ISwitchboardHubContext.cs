using Switchboard.Hub;

namespace Switchboard.Server;

/// <summary>Where a message published from the app's own code was stored.</summary>
/// <param name="Offset">Its offset in the room.</param>
/// <param name="Duplicate">True when a message with the same id was already stored (this call stored nothing).</param>
public readonly record struct HubPublishResult(long Offset, bool Duplicate);

/// <summary>
/// The hub from the app's own code (a controller, a background job): publish to a room, read its history, list its
/// members, disconnect a user. Inject it wherever <c>AddSwitchboard</c> was called.
/// </summary>
public interface ISwitchboardHubContext
{
    /// <summary>
    /// Publishes <paramref name="text"/> to <paramref name="room"/> as <paramref name="name"/> (user "app"); completes once
    /// the message is committed. The same <paramref name="id"/> in the same room is stored once: a retry is safe.
    /// </summary>
    Task<HubPublishResult> PublishAsync(string room, string text, string id, string? name = null);

    /// <summary>Up to <paramref name="limit"/> messages of <paramref name="room"/> after <paramref name="afterOffset"/>, oldest first.</summary>
    ValueTask<IReadOnlyList<StoredMessage>> ReadAsync(string room, long afterOffset = 0, int limit = 100);

    /// <summary>The room's members on every server, or null when the room does not exist.</summary>
    Task<IReadOnlyList<HubIdentity>?> GetMembersAsync(string room);

    /// <summary>The rooms this server knows.</summary>
    IReadOnlyList<string> ListRooms();

    /// <summary>
    /// Deletes the room's history: offsets start over in a new epoch, and members on every server get <c>reset</c>.
    /// Returns the new epoch, or null when the room does not exist.
    /// </summary>
    Task<string?> DeleteHistoryAsync(string room);

    /// <summary>Closes the user's hub connections with 4003 on every server; returns how many were closed on this one.</summary>
    Task<int> DisconnectUserAsync(string userId);
}

internal sealed class SwitchboardHubContext(SwitchboardRuntime runtime) : ISwitchboardHubContext
{
    /// <summary>The user id of messages published from the app's code.</summary>
    public const string AppUser = "app";

    public async Task<HubPublishResult> PublishAsync(string room, string text, string id, string? name = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        AppendResult r = await runtime.Hub.PublishAsync(room, new HubIdentity(AppUser, string.IsNullOrEmpty(name) ? AppUser : name), text, id).ConfigureAwait(false);
        return new HubPublishResult(r.Message.Offset, r.Duplicate);
    }

    public ValueTask<IReadOnlyList<StoredMessage>> ReadAsync(string room, long afterOffset = 0, int limit = 100) => runtime.Hub.ReadAfterAsync(room, afterOffset, limit);

    public Task<IReadOnlyList<HubIdentity>?> GetMembersAsync(string room) => runtime.Hub.GetMembersAsync(room);

    public IReadOnlyList<string> ListRooms() => runtime.Hub.ListRooms();

    public async Task<string?> DeleteHistoryAsync(string room) => (await runtime.Hub.ResetRoomAsync(room).ConfigureAwait(false))?.Epoch;

    public Task<int> DisconnectUserAsync(string userId) => runtime.Hub.DisconnectUserEverywhereAsync(userId);
}
