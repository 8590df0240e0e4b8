using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Switchboard.Hub;

namespace Switchboard.Server;

/// <summary>The server API's settings, section <c>Switchboard:Api</c>.</summary>
public sealed class ApiOptions
{
    /// <summary>
    /// The API keys a backend may present in <c>X-Api-Key</c> (<c>Switchboard:Api:Keys:0</c>, <c>:1</c>, ...; several, so
    /// keys can be rotated). With none, the API is off: its paths answer 404.
    /// </summary>
    public List<string> Keys { get; set; } = [];
}

/// <summary>A message to publish through the API.</summary>
/// <param name="Text">The text (at most <see cref="HubOptions.MaxTextBytes"/> of UTF-8).</param>
/// <param name="Id">The idempotency key: the same id in the same room gives the same offset, once.</param>
/// <param name="Name">The sender's display name (default "api").</param>
public sealed record ApiMessage(string? Text, string? Id, string? Name = null);

/// <summary>One message to several rooms.</summary>
public sealed record ApiMultiPublish(IReadOnlyList<string>? Rooms, string? Text, string? Id, string? Name = null);

/// <summary>Where a message was stored.</summary>
public sealed record ApiPublished(long Offset, bool Duplicate);

/// <summary>Where a message was stored, per room.</summary>
public sealed record ApiRoomPublished(string Room, long Offset, bool Duplicate);

/// <summary>A stored message as the API returns it.</summary>
public sealed record ApiStoredMessage(long Offset, string Id, string User, string Name, string Text, DateTimeOffset Time);

/// <summary>A page of a room's history.</summary>
public sealed record ApiMessagePage(string Room, IReadOnlyList<ApiStoredMessage> Messages, long? Next);

/// <summary>A member of a room.</summary>
public sealed record ApiMember(string User, string Name);

/// <summary>How many connections were closed on the server that got the request (the others close theirs too).</summary>
public sealed record ApiDisconnected(string User, int Connections);

/// <summary>A room whose history was deleted: offsets start over in <paramref name="Epoch"/>.</summary>
public sealed record ApiHistoryDeleted(string Room, string Epoch);

/// <summary>
/// HTTP endpoints for backends under <c>/api</c>: publish (acked once committed, idempotent by id), read history by
/// offset, list rooms and members, disconnect a user. Authenticated by API keys; errors are ProblemDetails
/// (RFC 9457); described by the OpenAPI document at <c>/openapi/v1.json</c>.
/// </summary>
internal static class ServerApi
{
    /// <summary>The OpenAPI document the API endpoints belong to.</summary>
    public const string Document = "v1";

    /// <summary>The user id messages published through the API carry (with the message id, the idempotency key).</summary>
    public const string ApiUser = "api";

    /// <summary>The close code for a user disconnected through the API (application range, docs/protocol.md).</summary>
    public const ushort DisconnectedCloseCode = HubCloseCodes.Disconnected;

    private const int MaxPage = 1000;

    public static void Map(WebApplication app, SwitchboardRuntime runtime, ApiOptions options)
    {
        if (options.Keys.Count == 0)
        {
            return;
        }

        byte[][] keys = [.. options.Keys.Select(Encoding.UTF8.GetBytes)];
        RouteGroupBuilder api = app.MapGroup("/api").WithGroupName(Document).AddEndpointFilter(async (context, next) =>
            Authorized(context.HttpContext, keys) ? await next(context).ConfigureAwait(false)
                : Results.Problem(statusCode: 401, title: "Unauthorized", detail: "Send one of the configured API keys in the X-Api-Key header."));

        api.MapPost("/rooms/{room}/messages", async (string room, ApiMessage body) =>
        {
            if (Invalid(runtime.Hub, body.Text, body.Id) is { } problem)
            {
                return problem;
            }

            return await PublishAsync(runtime.Hub, room, body.Text!, body.Id!, body.Name, r => TypedResults.Ok(new ApiPublished(r.Message.Offset, r.Duplicate))).ConfigureAwait(false);
        }).WithName("PublishToRoom").WithSummary("Publishes a message to a room; answers once it is committed.")
            .Produces<ApiPublished>().ProducesProblem(400).ProducesProblem(401).ProducesProblem(404).ProducesProblem(429).ProducesProblem(507);

        api.MapPost("/publish", async (ApiMultiPublish body) =>
        {
            if (Invalid(runtime.Hub, body.Text, body.Id) is { } problem)
            {
                return problem;
            }

            if (body.Rooms is not { Count: > 0 } rooms || rooms.Any(string.IsNullOrEmpty) || rooms.Distinct(StringComparer.Ordinal).Count() != rooms.Count)
            {
                return Results.Problem(statusCode: 400, title: "Bad request", detail: "\"rooms\" must list at least one room, each once.");
            }

            var published = new List<ApiRoomPublished>(rooms.Count);
            foreach (string room in rooms)
            {
                IResult one = await PublishAsync(runtime.Hub, room, body.Text!, body.Id!, body.Name, r => TypedResults.Ok(new ApiPublished(r.Message.Offset, r.Duplicate))).ConfigureAwait(false);
                if (one is not Microsoft.AspNetCore.Http.HttpResults.Ok<ApiPublished> ok)
                {
                    return one; // the rooms before it keep their message: publishing again with the same id is idempotent
                }

                published.Add(new ApiRoomPublished(room, ok.Value!.Offset, ok.Value.Duplicate));
            }

            return TypedResults.Ok(published);
        }).WithName("PublishToRooms").WithSummary("Publishes one message to several rooms: an offset per room.")
            .Produces<List<ApiRoomPublished>>().ProducesProblem(400).ProducesProblem(401).ProducesProblem(404).ProducesProblem(429).ProducesProblem(507);

        api.MapGet("/rooms/{room}/messages", async (string room, long? after, int? limit) =>
        {
            if (!runtime.Hub.RoomExists(room))
            {
                return NoRoom(room);
            }

            int take = limit ?? 100;
            if (take is < 1 or > MaxPage || after < 0)
            {
                return Results.Problem(statusCode: 400, title: "Bad request", detail: $"\"limit\" is 1 to {MaxPage}; \"after\" is an offset, 0 or more.");
            }

            IReadOnlyList<StoredMessage> page = await runtime.Hub.ReadAfterAsync(room, after ?? 0, take).ConfigureAwait(false);
            ApiStoredMessage[] messages = [.. page.Select(m => new ApiStoredMessage(m.Offset, m.Id, m.UserId, m.Name, m.Text, m.Time))];
            return TypedResults.Ok(new ApiMessagePage(room, messages, messages.Length == take ? messages[^1].Offset : null));
        }).WithName("ReadMessages").WithSummary("Reads a room's history after an offset, oldest first; \"next\" is the offset to continue after.")
            .Produces<ApiMessagePage>().ProducesProblem(400).ProducesProblem(401).ProducesProblem(404);

        api.MapGet("/rooms/{room}/presence", async (string room) =>
            await runtime.Hub.GetMembersAsync(room).ConfigureAwait(false) is { } members
                ? TypedResults.Ok(members.Select(m => new ApiMember(m.UserId, m.Name)).OrderBy(m => m.User, StringComparer.Ordinal).ToList())
                : NoRoom(room))
            .WithName("ListMembers").WithSummary("Lists the room's members, on every server.")
            .Produces<List<ApiMember>>().ProducesProblem(401).ProducesProblem(404);

        api.MapGet("/rooms", () => TypedResults.Ok(runtime.Hub.ListRooms()))
            .WithName("ListRooms").WithSummary("Lists the rooms.").Produces<IReadOnlyList<string>>().ProducesProblem(401);

        api.MapDelete("/rooms/{room}/messages", async (string room) =>
            await runtime.Hub.ResetRoomAsync(room).ConfigureAwait(false) is RoomState state
                ? TypedResults.Ok(new ApiHistoryDeleted(room, state.Epoch))
                : NoRoom(room))
            .WithName("DeleteMessages").WithSummary("Deletes the room's history: offsets start over in a new epoch; members on every server get \"reset\".")
            .Produces<ApiHistoryDeleted>().ProducesProblem(401).ProducesProblem(404);

        api.MapPost("/users/{user}/disconnect", async (string user) =>
            TypedResults.Ok(new ApiDisconnected(user, await runtime.Hub.DisconnectUserEverywhereAsync(user).ConfigureAwait(false))))
            .WithName("DisconnectUser").WithSummary("Closes the user's hub connections with 4003, on every server; \"connections\" counts this server's.")
            .Produces<ApiDisconnected>().ProducesProblem(401);
    }

    private static bool Authorized(HttpContext context, byte[][] keys)
    {
        string? presented = context.Request.Headers["X-Api-Key"];
        if (string.IsNullOrEmpty(presented))
        {
            return false;
        }

        byte[] bytes = Encoding.UTF8.GetBytes(presented);
        bool match = false;
        foreach (byte[] key in keys)
        {
            match |= CryptographicOperations.FixedTimeEquals(bytes, key); // no early exit: timing says nothing about which key
        }

        return match;
    }

    private static IResult? Invalid(Hub.Hub hub, string? text, string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 128)
        {
            return Results.Problem(statusCode: 400, title: "Bad request", detail: "\"id\" is required (1 to 128 characters): it makes a retry safe.");
        }

        if (text is null || Encoding.UTF8.GetByteCount(text) > hub.Options.MaxTextBytes)
        {
            return Results.Problem(statusCode: 400, title: "Bad request", detail: $"\"text\" is required, at most {hub.Options.MaxTextBytes} bytes of UTF-8.");
        }

        return null;
    }

    private static async Task<IResult> PublishAsync(Hub.Hub hub, string room, string text, string id, string? name, Func<AppendResult, IResult> ok)
    {
        if (!HubOptions.IsValidRoomName(room))
        {
            return Results.Problem(statusCode: 400, title: "Bad request", detail: $"'{room}' is not a valid room name (docs/protocol.md, Rooms).");
        }

        try
        {
            return ok(await hub.PublishAsync(room, new HubIdentity(ApiUser, string.IsNullOrEmpty(name) ? ApiUser : name), text, id).ConfigureAwait(false));
        }
        catch (RoomCreationRefusedException e)
        {
            return Results.Problem(statusCode: 429, title: "Too many new rooms", detail: e.Message,
                extensions: new Dictionary<string, object?> { ["retryAfterSeconds"] = (int)Math.Ceiling(e.RetryAfter.TotalSeconds) });
        }
        catch (RoomLimitReachedException e)
        {
            return Results.Problem(statusCode: 507, title: "Room limit reached", detail: e.Message);
        }
        catch (InvalidOperationException) when (!hub.RoomExists(room))
        {
            return NoRoom(room); // rooms are not created on first use here, and this one does not exist
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return Results.Problem(statusCode: 503, title: "Not stored", detail: "The message was not stored (the store failed); send it again with the same id.");
        }
    }

    private static IResult NoRoom(string room) =>
        Results.Problem(statusCode: 404, title: "No such room", detail: $"Room '{room}' does not exist.");
}
