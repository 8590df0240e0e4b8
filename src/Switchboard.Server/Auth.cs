using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Switchboard.Hub;

namespace Switchboard.Server;

/// <summary>Authentication settings (section "Switchboard:Auth"). Off by default: users pick a display name.</summary>
public sealed class AuthOptions
{
    /// <summary>Require a JWT on /hub and /ws.</summary>
    public bool Enabled { get; set; }

    /// <summary>The HMAC-SHA256 signing key (at least 32 bytes of UTF-8).</summary>
    public string? SigningKey { get; set; }

    /// <summary>Expected issuer ("iss"); not checked when empty.</summary>
    public string? Issuer { get; set; }

    /// <summary>Expected audience ("aud"); not checked when empty.</summary>
    public string? Audience { get; set; }

    /// <summary>Tolerated clock difference when checking "exp" and "nbf" at the handshake. Default 30 s.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Browser origins allowed to connect (e.g. "https://chat.example.com"); requests without an Origin header
    /// (not browsers) are always allowed. Empty: any origin when authentication is off; only the server's own
    /// origin (same host and port) when it is on — a page on another site cannot ride a user's token.
    /// </summary>
    public List<string> AllowedOrigins { get; set; } = [];
}

/// <summary>What a validated token grants.</summary>
public sealed record Grant(HubIdentity Identity, DateTimeOffset ExpiresAt, IReadOnlyList<string>? JoinRooms, IReadOnlyList<string>? PublishRooms)
{
    /// <summary>True if <paramref name="room"/> matches one of <paramref name="patterns"/> ("team-*" matches a prefix); null patterns allow all.</summary>
    public static bool Allows(IReadOnlyList<string>? patterns, string room) =>
        patterns is null || patterns.Any(p => p == "*" || p == room || (p.EndsWith('*') && room.StartsWith(p[..^1], StringComparison.Ordinal)));
}

/// <summary>
/// JWT validation and issuing (Microsoft.IdentityModel.JsonWebTokens, HS256).
/// <para>
/// Where the token travels, and why: browsers cannot set headers on a WebSocket request, so they pass it as the
/// <c>access_token</c> query parameter; other clients may use <c>Authorization: Bearer</c>. Either way it is
/// checked during the HTTP handshake, before the upgrade: a bad token is refused with 401 and a reason, and no
/// unauthenticated WebSocket ever exists. (A token in the first message would let anyone hold open sockets;
/// one smuggled in Sec-WebSocket-Protocol must be echoed back by the server.) Query strings can end up in
/// access logs, so tokens should be short-lived and refreshed over the connection with the <c>refresh</c> command.
/// </para>
/// </summary>
public sealed class TokenService
{
    private readonly AuthOptions _options;
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly SymmetricSecurityKey _key;

    /// <summary>Creates the service; the key must be set.</summary>
    public TokenService(AuthOptions options)
    {
        _options = options;
        _key = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(options.SigningKey ?? throw new ServerConfigurationException("Switchboard:Auth:SigningKey is required.")));
    }

    /// <summary>Issues a token (for development: `switchboard token`).</summary>
    public string Issue(string subject, string? name, TimeSpan lifetime, IReadOnlyList<string>? join = null, IReadOnlyList<string>? publish = null)
    {
        var claims = new Dictionary<string, object> { ["sub"] = subject };
        if (name is not null)
        {
            claims["name"] = name;
        }

        if (join is not null)
        {
            claims["join"] = join.ToArray();
        }

        if (publish is not null)
        {
            claims["publish"] = publish.ToArray();
        }

        DateTime now = DateTime.UtcNow;
        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            Issuer = string.IsNullOrEmpty(_options.Issuer) ? null : _options.Issuer,
            Audience = string.IsNullOrEmpty(_options.Audience) ? null : _options.Audience,
            NotBefore = now.AddSeconds(-1),
            IssuedAt = now,
            Expires = now + lifetime,
            SigningCredentials = new SigningCredentials(_key, SecurityAlgorithms.HmacSha256),
        });
    }

    /// <summary>Validates a token; returns the grant, or null with a reason to show the client.</summary>
    public async Task<(Grant? Grant, string? Error)> ValidateAsync(string? token)
    {
        if (string.IsNullOrWhiteSpace(token))
        {
            return (null, "A token is required: pass access_token in the query string or an Authorization: Bearer header.");
        }

        TokenValidationResult result = await _handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            IssuerSigningKey = _key,
            ValidateIssuerSigningKey = true,
            ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
            ValidateIssuer = !string.IsNullOrEmpty(_options.Issuer),
            ValidIssuer = _options.Issuer,
            ValidateAudience = !string.IsNullOrEmpty(_options.Audience),
            ValidAudience = _options.Audience,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            ClockSkew = _options.ClockSkew,
        }).ConfigureAwait(false);
        if (!result.IsValid)
        {
            return (null, result.Exception switch
            {
                SecurityTokenExpiredException => "The token has expired.",
                SecurityTokenNotYetValidException => "The token is not valid yet.",
                SecurityTokenInvalidSignatureException or SecurityTokenSignatureKeyNotFoundException => "The token's signature is invalid.",
                SecurityTokenInvalidIssuerException => "The token's issuer is not accepted.",
                SecurityTokenInvalidAudienceException => "The token's audience is not accepted.",
                SecurityTokenNoExpirationException => "The token has no expiry.",
                _ => "The token is malformed or invalid.",
            });
        }

        try
        {
            return ReadGrant((JsonWebToken)result.SecurityToken);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException)
        {
            // Signed, but a claim is not text (e.g. "\ud800", which JSON's grammar allows): refuse, do not fail the handshake.
            return (null, "The token's claims cannot be read: they must be valid text.");
        }
    }

    private static (Grant? Grant, string? Error) ReadGrant(JsonWebToken jwt)
    {
        string? subject = jwt.Subject;
        if (string.IsNullOrWhiteSpace(subject))
        {
            return (null, "The token has no subject (sub).");
        }

        string name = jwt.TryGetPayloadValue("name", out string? n) && !string.IsNullOrWhiteSpace(n) ? n
            : jwt.TryGetPayloadValue("preferred_username", out string? u) && !string.IsNullOrWhiteSpace(u) ? u : subject;
        using JsonDocument payload = JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(jwt.EncodedPayload));
        if (!TryReadList(payload.RootElement, "join", out List<string>? join) || !TryReadList(payload.RootElement, "publish", out List<string>? publish))
        {
            // Signed by the issuer, but not a permission list we can read: refuse rather than guess what was meant.
            return (null, "The token's join and publish claims must be arrays of room patterns (strings).");
        }

        return (new Grant(new HubIdentity(Identity.Clean(subject), Identity.Clean(name)), new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero), join, publish), null);
    }

    /// <summary>
    /// A permission claim, read from the token's payload itself: absent (null: no restriction), or its room patterns.
    /// An empty array means no room at all (a claims identity drops empty arrays, which would read as "absent"). A
    /// string is one pattern, or a JSON array in a string; anything else cannot be read and is refused (false).
    /// </summary>
    private static bool TryReadList(JsonElement payload, string name, out List<string>? values)
    {
        values = null;
        if (payload.ValueKind != JsonValueKind.Object || !payload.TryGetProperty(name, out JsonElement claim))
        {
            return true;
        }

        if (claim.ValueKind == JsonValueKind.String && claim.GetString() is { } text)
        {
            if (!text.StartsWith('['))
            {
                values = [text];
                return true;
            }

            try
            {
                using JsonDocument inner = JsonDocument.Parse(text);
                claim = inner.RootElement.Clone();
            }
            catch (JsonException)
            {
                return false;
            }
        }

        if (claim.ValueKind != JsonValueKind.Array)
        {
            return false;
        }

        values = [];
        foreach (JsonElement item in claim.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                return false;
            }

            values.Add(item.GetString()!);
        }

        return true;
    }

    /// <summary>The token of a WebSocket request: Authorization: Bearer, else the access_token query parameter.</summary>
    public static string? FromRequest(HttpRequest request) =>
        From(request.Headers.Authorization, request.Query["access_token"].ToString());

    /// <summary>The token from an Authorization header value (Bearer), else from the access_token query value.</summary>
    public static string? From(string? authorization, string? accessToken)
    {
        if (authorization is not null && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization["Bearer ".Length..].Trim();
        }

        return string.IsNullOrEmpty(accessToken) ? null : accessToken;
    }
}

/// <summary>
/// A connection's rights from its token. The connection closes with 4001 "Token expired" when the token expires (on the
/// engine's heartbeat: no timer per connection), unless a fresh token for the same subject was presented with
/// <c>refresh</c> first, which moves the deadline.
/// </summary>
internal sealed class TokenAccess : IHubAccess, IDisposable
{
    /// <summary>The close code for an expired token (application range, docs/protocol.md).</summary>
    public const ushort TokenExpiredCloseCode = 4001;

    private readonly TokenService _tokens;
    private readonly WebSockets.WebSocketConnection _connection;
    private Grant _grant;

    public TokenAccess(TokenService tokens, Grant grant, WebSockets.WebSocketConnection connection)
    {
        _tokens = tokens;
        _grant = grant;
        _connection = connection;
        Arm();
    }

    public bool CanJoin(string room) => Grant.Allows(_grant.JoinRooms, room);

    public bool CanPublish(string room) => Grant.Allows(_grant.PublishRooms, room);

    public async ValueTask<string?> RefreshAsync(string token)
    {
        var (grant, error) = await _tokens.ValidateAsync(token).ConfigureAwait(false);
        if (grant is null)
        {
            return error;
        }

        if (grant.Identity.UserId != _grant.Identity.UserId)
        {
            return "A refreshed token must be for the same subject.";
        }

        _grant = grant;
        Arm();
        return null;
    }

    private void Arm() => _connection.CloseAt(_grant.ExpiresAt, TokenExpiredCloseCode, "Token expired");

    public void Dispose()
    {
        // Nothing to release: the deadline lives on the connection and ends with it.
    }
}
