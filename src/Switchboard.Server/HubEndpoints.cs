using System.Buffers;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Switchboard.Hub;
using Switchboard.Protocol;
using Switchboard.WebSockets;

namespace Switchboard.Server;

/// <summary>The hub's view of a WebSocket connection: each hub message is framed once and shared by every recipient.</summary>
internal sealed class HubConnectionAdapter(WebSocketConnection connection) : IHubConnection
{
    // A message encoded with headroom is framed where it lies (one buffer per message for the whole fan-out).
    private static readonly Func<OutboundMessage, PreparedFrame> Frame = m =>
        OutboundMessage.Headroom == PreparedFrame.HeaderRoom && m.HeadroomBuffer is { } buffer
            ? PreparedFrame.Wrap(MessageType.Text, buffer)
            : PreparedFrame.Create(MessageType.Text, m.Utf8Json.Span);

    // Made when asked (the welcome, presence keys): kept, it would be a string per idle connection.
    public string Id => connection.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public long QueuedBytes => connection.QueuedBytes;

    public bool Send(OutboundMessage message) => connection.Send(message.GetOrCreateTransportForm(Frame)) == SendResult.Enqueued;

    public bool TrySendLive(OutboundMessage message, long softLimitBytes) =>
        connection.TrySend(message.GetOrCreateTransportForm(Frame), softLimitBytes) == SendResult.Enqueued;

    public Task WhenDrainedAsync() => connection.WhenOutboundDrainedAsync();

    public void Close(ushort code, string reason) => connection.Close(code, reason);
}

/// <summary>/hub: the hub protocol (JSON text messages, docs/protocol.md).</summary>
internal sealed class HubHandler(Hub.Hub hub, HubIdentity identity, ILogger logger, Func<WebSocketConnection, IHubAccess>? access = null) : WebSocketHandler
{
    private HubSession? _session;
    private IHubAccess? _access;

    public override ValueTask OnOpenAsync(WebSocketConnection connection)
    {
        _access = access?.Invoke(connection);
        _session = hub.Connect(new HubConnectionAdapter(connection), identity, _access);
        return ValueTask.CompletedTask;
    }

    public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
    {
        if (message.Type != MessageType.Text)
        {
            // Abuse of the protocol itself: the only case (with oversize messages, 1009) that closes the connection.
            connection.Close(WebSocketCloseCode.UnsupportedData, "The hub protocol uses JSON text messages");
            return ValueTask.CompletedTask;
        }

        return _session!.HandleAsync(message.Data);
    }

    public override async ValueTask OnCloseAsync(WebSocketConnection connection, WebSocketCloseStatus status)
    {
        (_access as IDisposable)?.Dispose();
        if (_session is not null)
        {
            try
            {
                await _session.DisconnectedAsync();
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "Hub session cleanup failed");
            }
        }
    }
}

/// <summary>
/// /ws: the seed chat contract. A client sends {"name": ..., "message": ...}; the server adds "time" (HH:MM:SS,
/// server local time) and sends it to every /ws client, the sender included. These are the messages of the
/// hub's "general" room: stored like any other, and seen by hub clients there (and vice versa).
/// </summary>
internal sealed class SeedChatHandler(Hub.Hub hub, ILogger logger, Grant? grant = null, Func<WebSocketConnection, IHubAccess>? access = null) : WebSocketHandler, IRoomListener
{
    private IHubAccess? _access;

    private IAsyncDisposable? _subscription;
    private HubConnectionAdapter? _adapter;
    private PublishRateLimiter? _publishes; // both created by the first message: an idle connection holds neither
    private PublishWindow? _inFlight;

    public override async ValueTask OnOpenAsync(WebSocketConnection connection)
    {
        _adapter = new HubConnectionAdapter(connection);
        _access = access?.Invoke(connection);
        if (grant is not null && !Grant.Allows(grant.JoinRooms, SeedChat.Room))
        {
            connection.Close(WebSocketCloseCode.PolicyViolation, "Not allowed to join 'general'");
            return;
        }

        _subscription = await hub.ListenAsync(SeedChat.Room, this);
    }

    public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
    {
        if (!LooksLikeJsonObject(message.Data))
        {
            // Seed 000's contract on the same path: plain text is answered to the sender only, and not stored.
            connection.SendText("Message text was: " + System.Text.EncodingExtensions.GetString(System.Text.Encoding.UTF8, message.Data));
            return ValueTask.CompletedTask;
        }

        string? name = null, text = null, problem = null;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(message.Data);
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                problem = "Send a JSON object: {\"name\": ..., \"message\": ...}.";
            }
            else
            {
                name = root.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String ? n.GetString() : "Anonymous";
                text = root.TryGetProperty("message", out JsonElement m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
                if (text is null)
                {
                    problem = "\"message\" must be a string.";
                }
            }
        }
        catch (JsonException)
        {
            problem = "Invalid JSON: send {\"name\": ..., \"message\": ...}.";
        }
        catch (InvalidOperationException)
        {
            // Valid JSON grammar, but a string with an unpaired surrogate escape ("\ud800"): not text.
            problem = "Invalid JSON: \"name\" and \"message\" must be text (an unpaired UTF-16 surrogate escape is not).";
        }

        if (problem is not null)
        {
            _adapter!.Send(HubProtocol.Error(HubErrorCodes.BadJson, problem, null));
            return ValueTask.CompletedTask;
        }

        if (System.Text.Encoding.UTF8.GetByteCount(text!) > hub.Options.MaxTextBytes)
        {
            _adapter!.Send(HubProtocol.Error(HubErrorCodes.InvalidText, $"\"message\" is longer than {hub.Options.MaxTextBytes} UTF-8 bytes.", null));
            return ValueTask.CompletedTask;
        }

        if (grant is not null && !Grant.Allows(grant.PublishRooms, SeedChat.Room))
        {
            _adapter!.Send(HubProtocol.Error(HubErrorCodes.Forbidden, "Not allowed to publish to 'general'.", null));
            return ValueTask.CompletedTask;
        }

        if ((_publishes ??= PublishRateLimiter.For(hub.Options)) is { } limiter && !limiter.TryTake(out TimeSpan retryAfter))
        {
            _adapter!.Send(HubProtocol.RateLimited(hub.Options, retryAfter, null));
            return ValueTask.CompletedTask;
        }

        // With authentication the token says who is speaking; without it, the message's "name" does (the seed way).
        string who = string.IsNullOrWhiteSpace(name) ? "Anonymous" : Identity.Clean(name);
        HubIdentity from = grant?.Identity ?? new HubIdentity(who, who);
        int bytes = System.Text.Encoding.UTF8.GetByteCount(text!);
        PublishWindow inFlight = _inFlight ??= new PublishWindow(hub.Options, hub.Metrics);
        inFlight.Enter(bytes);
        Task publish = hub.PublishAsync(SeedChat.Room, from, text!);
        _ = publish.ContinueWith(t =>
        {
            inFlight.Exit(bytes);
            if (t.IsFaulted)
            {
                logger.LogWarning(t.Exception, "Storing a /ws message failed");
                _adapter!.Send(HubProtocol.Error(HubErrorCodes.Internal, "The message could not be stored.", null));
            }
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return inFlight.WhenOpenAsync(); // a full window: read nothing more from this connection until its messages are stored
    }

    /// <summary>A message of the room, live: sent in the seed format, encoded once for every /ws client.</summary>
    public void Deliver(RoomMessage message) => _adapter!.Send(message.Encoded(SeedChat.Encoder));

    /// <summary>
    /// The rule that lets seed 000 (plain text) and seed 003 (JSON chat) share /ws: a message whose first non-blank
    /// character is '{' is a chat message (and a broken one gets bad_json); anything else is plain text.
    /// </summary>
    internal static bool LooksLikeJsonObject(ReadOnlySequence<byte> data)
    {
        var reader = new SequenceReader<byte>(data);
        reader.AdvancePastAny((byte)' ', (byte)'\t', (byte)'\r', (byte)'\n');
        return reader.TryPeek(out byte first) && first == (byte)'{';
    }

    public override async ValueTask OnCloseAsync(WebSocketConnection connection, WebSocketCloseStatus status)
    {
        (_access as IDisposable)?.Dispose();
        if (_subscription is not null)
        {
            await _subscription.DisposeAsync();
        }
    }
}

/// <summary>Identity without authentication: the client picks a display name (the seed way) and optionally a user id.</summary>
internal static class Identity
{
    public const int MaxLength = 64;

    public static string Clean(string value)
    {
        string v = new([.. value.Trim().Where(c => !char.IsControl(c))]);
        return v.Length <= MaxLength ? v : v[..MaxLength];
    }

    /// <summary>From the query string: ?name=Display+Name&amp;user=stable-id (user defaults to the name).</summary>
    public static HubIdentity FromQuery(string? name, string? user)
    {
        string display = string.IsNullOrWhiteSpace(name) ? "Anonymous" : Clean(name);
        string id = string.IsNullOrWhiteSpace(user) ? display : Clean(user);
        return new HubIdentity(id, display);
    }
}
