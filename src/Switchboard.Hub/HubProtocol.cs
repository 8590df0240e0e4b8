using System.Buffers;
using System.Text.Json;
using Switchboard.Hub.Messages;

namespace Switchboard.Hub;

/// <summary>Error codes of the hub protocol (docs/protocol.md lists each with its meaning).</summary>
public static class HubErrorCodes
{
    /// <summary>The message is not a JSON object.</summary>
    public const string BadJson = "bad_json";
    /// <summary>Unknown command type, or a required field is missing or has the wrong type.</summary>
    public const string BadCommand = "bad_command";
    /// <summary>The room name is not valid.</summary>
    public const string InvalidRoom = "invalid_room";
    /// <summary>The room does not exist and rooms are not created on first use.</summary>
    public const string RoomNotFound = "room_not_found";
    /// <summary>The message text is empty or too long.</summary>
    public const string InvalidText = "invalid_text";
    /// <summary>The message id is missing or too long.</summary>
    public const string InvalidId = "invalid_id";
    /// <summary>The connection is not a member of the room.</summary>
    public const string NotJoined = "not_joined";
    /// <summary>The connection already joined the room.</summary>
    public const string AlreadyJoined = "already_joined";
    /// <summary>The connection is already in <see cref="HubOptions.MaxRoomsPerConnection"/> rooms.</summary>
    public const string TooManyRooms = "too_many_rooms";
    /// <summary>The connection publishes faster than <see cref="HubOptions.PublishRateLimit"/> allows.</summary>
    public const string RateLimited = "rate_limited";
    /// <summary>A parameter is out of range (limit, since, before).</summary>
    public const string InvalidArgument = "invalid_argument";
    /// <summary>The identity may not do this in this room.</summary>
    public const string Forbidden = "forbidden";
    /// <summary>A token presented with <c>refresh</c> was refused.</summary>
    public const string InvalidToken = "invalid_token";
    /// <summary>The server failed (e.g. storage unavailable); the command may be retried.</summary>
    public const string Internal = "internal";
    /// <summary>Too much is queued to this connection: read it, then retry (<c>history</c>).</summary>
    public const string Busy = "busy";
    /// <summary>The connection (or the server) created too many new rooms lately; retry later (<c>retryAfterMs</c>).</summary>
    public const string TooManyNewRooms = "too_many_new_rooms";
    /// <summary>The server holds <see cref="HubOptions.MaxRooms"/> rooms: no new room can be created (existing ones work).</summary>
    public const string RoomLimit = "room_limit";
}

/// <summary>The hub protocol's version, sent in <c>welcome</c>, and how the hub writes the protocol's messages.</summary>
public static class HubProtocol
{
    /// <summary>Current version.</summary>
    public const int Version = 1;

    /// <summary>A reply buffer that grew past this (a large history page) is not kept for the next message.</summary>
    private const int KeptBufferBytes = 64 * 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>
    /// How the hub writes JSON (also for encoders of the same messages elsewhere, like the seed contract): minimal
    /// escaping, so non-ASCII text and quotes stay readable. Safe because clients treat every field as data (the
    /// browser UI renders text with textContent, never as HTML).
    /// </summary>
    public static JsonWriterOptions WriterOptions { get; } = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Serializes one server message (its definition is in Switchboard.Hub.Messages) into a message ready to send.</summary>
    public static OutboundMessage Build<T>(T message)
        where T : ServerMessage
    {
        ArrayBufferWriter<byte> buffer = t_buffer ??= new ArrayBufferWriter<byte>(256);
        Utf8JsonWriter writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        try
        {
            buffer.Advance(OutboundMessage.Headroom); // left free: the transport frames the message in place
            JsonSerializer.Serialize(writer, message, HubJson.TypeInfo<T>());
            writer.Flush();
            return OutboundMessage.WithHeadroom(buffer.WrittenSpan.ToArray());
        }
        finally
        {
            if (buffer.Capacity > KeptBufferBytes)
            {
                t_buffer = null;
                t_writer = null;
            }
            else
            {
                buffer.ResetWrittenCount();
                writer.Reset(buffer);
            }
        }
    }

    /// <summary>An error reply.</summary>
    public static OutboundMessage Error(string code, string message, string? reference) => Build(new ErrorMessage(code, message) { Ref = reference });

    /// <summary>An error reply that says when to retry.</summary>
    public static OutboundMessage Error(string code, string message, TimeSpan retryAfter, string? reference) =>
        Build(new ErrorMessage(code, message, (long)Math.Ceiling(retryAfter.TotalMilliseconds)) { Ref = reference });

    /// <summary>The <c>rate_limited</c> error, with when the next publish will be allowed.</summary>
    public static OutboundMessage RateLimited(HubOptions options, TimeSpan retryAfter, string? reference) => Error(HubErrorCodes.RateLimited,
        $"Publishing too fast: at most {options.PublishRateLimit:0.###} messages a second (bursts of {options.PublishBurst}). Not stored; retry later.", retryAfter, reference);

    /// <summary>A message event.</summary>
    public static OutboundMessage Message(string room, StoredMessage m) =>
        Build(new MessageEvent(room, m.Offset, m.Id, m.UserId, m.Name, m.Text, m.Time));

    /// <summary>A stored message as a <c>history</c> reply lists it.</summary>
    public static HistoryItem HistoryItem(StoredMessage m) => new(m.Offset, m.Id, m.UserId, m.Name, m.Text, m.Time);

    /// <summary>About how many bytes a message takes in a reply: its strings as UTF-8 plus the field names (escapes not counted).</summary>
    public static long EstimatedSize(StoredMessage m) =>
        128 + System.Text.Encoding.UTF8.GetByteCount(m.Text) + System.Text.Encoding.UTF8.GetByteCount(m.Name) + m.Id.Length + m.UserId.Length;
}
