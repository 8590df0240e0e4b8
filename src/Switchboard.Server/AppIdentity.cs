using System.Security.Claims;
using System.Text.Json;
using Switchboard.Hub;

namespace Switchboard.Server;

/// <summary>
/// A hub connection authorized by the host app's own ASP.NET Core authentication (JwtBearer, cookies, ...): who it is
/// and what it may do, read from the principal the app's scheme produced. The user id is the <c>sub</c> /
/// NameIdentifier claim, the display name <c>name</c> (or the identity's name), and the rooms come from <c>join</c>
/// and <c>publish</c> claims (room patterns; one claim per pattern, or a JSON array in one claim).
/// <para>
/// Fail closed: a principal without a <c>join</c> (or <c>publish</c>) claim may join (or publish to) no room — "*"
/// grants all. (ASP.NET Core turns a JSON array claim into one claim per element, so an empty array arrives as no claim
/// at all; reading "absent" as "everything" would turn "no rooms" into "all rooms".)
/// </para>
/// </summary>
internal static class AppIdentity
{
    public static (Grant? Grant, string? Error) From(ClaimsPrincipal user, TimeProvider time)
    {
        string? subject = user.FindFirst("sub")?.Value ?? user.FindFirst(ClaimTypes.NameIdentifier)?.Value;
        if (string.IsNullOrWhiteSpace(subject))
        {
            return (null, "The authenticated user has no subject (sub or NameIdentifier claim).");
        }

        string name = user.FindFirst("name")?.Value is { Length: > 0 } n ? n : user.Identity?.Name is { Length: > 0 } i ? i : subject;
        if (!TryRead(user, "join", out List<string>? join) || !TryRead(user, "publish", out List<string>? publish))
        {
            return (null, "The join and publish claims must be room patterns (strings, or JSON arrays of strings).");
        }

        // Expiry, when the scheme says (a bearer token's exp); a cookie session has none the hub could see.
        DateTimeOffset expires = long.TryParse(user.FindFirst("exp")?.Value, out long exp) ? DateTimeOffset.FromUnixTimeSeconds(exp) : DateTimeOffset.MaxValue;
        return (new Grant(new HubIdentity(Identity.Clean(subject), Identity.Clean(name)), expires, join, publish), null);
    }

    private static bool TryRead(ClaimsPrincipal user, string type, out List<string> patterns)
    {
        patterns = [];
        foreach (Claim claim in user.FindAll(type))
        {
            string value = claim.Value;
            if (!value.StartsWith('['))
            {
                patterns.Add(value);
                continue;
            }

            try
            {
                using JsonDocument array = JsonDocument.Parse(value);
                foreach (JsonElement e in array.RootElement.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.String)
                    {
                        return false;
                    }

                    patterns.Add(e.GetString()!);
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>The rights of a connection the host app authenticated: fixed for its life, closed at the token's expiry if it has one.</summary>
internal sealed class PrincipalAccess : IHubAccess
{
    private readonly Grant _grant;

    public PrincipalAccess(Grant grant, WebSockets.WebSocketConnection connection)
    {
        _grant = grant;
        if (grant.ExpiresAt != DateTimeOffset.MaxValue)
        {
            connection.CloseAt(grant.ExpiresAt, TokenAccess.TokenExpiredCloseCode, "Token expired");
        }
    }

    public bool CanJoin(string room) => Grant.Allows(_grant.JoinRooms, room);

    public bool CanPublish(string room) => Grant.Allows(_grant.PublishRooms, room);

    public ValueTask<string?> RefreshAsync(string token) =>
        ValueTask.FromResult<string?>("This connection was authorized by the app's own authentication: reconnect with fresh credentials instead.");
}
