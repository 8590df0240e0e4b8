using System.Buffers;
using System.Text.Json;

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
}

/// <summary>The hub protocol's version, sent in <c>welcome</c>.</summary>
public static class HubProtocol
{
    /// <summary>Current version.</summary>
    public const int Version = 1;

    /// <summary>
    /// How the hub writes JSON (also for encoders of the same messages elsewhere, like the seed contract): minimal
    /// escaping, so non-ASCII text and quotes stay readable. Safe because clients treat every field as data (the
    /// browser UI renders text with textContent, never as HTML).
    /// </summary>
    public static JsonWriterOptions WriterOptions { get; } = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Builds a JSON message with <paramref name="write"/> writing the object's properties.</summary>
    public static OutboundMessage Build(string type, Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            write(w);
            w.WriteEndObject();
        }

        return new OutboundMessage(buffer.WrittenSpan.ToArray());
    }

    /// <summary>An error reply.</summary>
    public static OutboundMessage Error(string code, string message, string? reference) => Build("error", w =>
    {
        w.WriteString("code", code);
        w.WriteString("message", message);
        WriteRef(w, reference);
    });

    /// <summary>The <c>rate_limited</c> error, with when the next publish will be allowed.</summary>
    public static OutboundMessage RateLimited(HubOptions options, TimeSpan retryAfter, string? reference) => Build("error", w =>
    {
        w.WriteString("code", HubErrorCodes.RateLimited);
        w.WriteString("message", $"Publishing too fast: at most {options.PublishRateLimit:0.###} messages a second (bursts of {options.PublishBurst}). Not stored; retry later.");
        w.WriteNumber("retryAfterMs", (long)Math.Ceiling(retryAfter.TotalMilliseconds));
        WriteRef(w, reference);
    });

    /// <summary>A message event.</summary>
    public static OutboundMessage Message(string room, StoredMessage m) => Build("message", w =>
    {
        w.WriteString("room", room);
        WriteMessageFields(w, m);
    });

    /// <summary>About how many bytes a message takes in a reply: its strings as UTF-8 plus the field names (escapes not counted).</summary>
    public static long EstimatedSize(StoredMessage m) =>
        128 + System.Text.Encoding.UTF8.GetByteCount(m.Text) + System.Text.Encoding.UTF8.GetByteCount(m.Name) + m.Id.Length + m.UserId.Length;

    /// <summary>Writes offset, id, from, name, text and time.</summary>
    public static void WriteMessageFields(Utf8JsonWriter w, StoredMessage m)
    {
        w.WriteNumber("offset", m.Offset);
        w.WriteString("id", m.Id);
        w.WriteString("from", m.UserId);
        w.WriteString("name", m.Name);
        w.WriteString("text", m.Text);
        w.WriteString("time", m.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Writes "ref" when present.</summary>
    public static void WriteRef(Utf8JsonWriter w, string? reference)
    {
        if (reference is not null)
        {
            w.WriteString("ref", reference);
        }
    }
}

/// <summary>A parsed client command.</summary>
internal sealed record HubCommand(string Type, string? Ref, JsonElement Root)
{
    public string? GetString(string name) =>
        Root.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;

    public bool Has(string name) => Root.TryGetProperty(name, out JsonElement e) && e.ValueKind != JsonValueKind.Null;

    /// <summary>Reads an optional non-negative integer; false when present but not one.</summary>
    public bool TryGetLong(string name, out long? value)
    {
        value = null;
        if (!Root.TryGetProperty(name, out JsonElement e) || e.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) && v >= 0)
        {
            value = v;
            return true;
        }

        return false;
    }

    /// <summary>Parses one text message; null with an error message when it is not a command object.</summary>
    public static HubCommand? Parse(ReadOnlySequence<byte> utf8, out string? error, out string? reference)
    {
        error = null;
        reference = null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException ex)
        {
            error = "Invalid JSON: " + ex.Message.Split('.')[0] + ".";
            return null;
        }

        JsonElement root = doc.RootElement.Clone();
        doc.Dispose();
        if (root.ValueKind != JsonValueKind.Object)
        {
            error = "A command must be a JSON object.";
            return null;
        }

        if (HasSurrogateEscape(utf8) && FindUndecodableString(root, out reference) is string where)
        {
            // JSON's grammar allows "\ud800" alone, but it is not text: .NET cannot turn it into a string (and
            // cannot even look a property up past such a name).
            error = $"Invalid JSON: {where} has an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF).";
            return null;
        }

        if (root.TryGetProperty("ref", out JsonElement r))
        {
            reference = ReadRef(r);
        }

        if (!root.TryGetProperty("type", out JsonElement t) || t.ValueKind != JsonValueKind.String)
        {
            error = "A command needs a string \"type\".";
            return null;
        }

        return new HubCommand(t.GetString()!, reference, root);
    }

    /// <summary>Whether the raw text has an escape in \uD800-\uDFFF (a surrogate; paired ones are fine and common).</summary>
    private static bool HasSurrogateEscape(ReadOnlySequence<byte> utf8)
    {
        ReadOnlySpan<byte> span = utf8.IsSingleSegment ? utf8.FirstSpan : utf8.ToArray();
        for (int at; (at = span.IndexOf("\\u"u8)) >= 0; span = span[(at + 2)..])
        {
            if (at + 3 < span.Length && (span[at + 2] | 0x20) == 'd' && (span[at + 3] | 0x20) is (>= (byte)'8' and <= (byte)'9') or (>= (byte)'a' and <= (byte)'f'))
            {
                return true;
            }
        }

        return false;
    }

    private static string? ReadRef(JsonElement r) => r.ValueKind switch
    {
        JsonValueKind.String => r.GetString(),
        JsonValueKind.Number => r.GetRawText(),
        _ => null,
    };

    /// <summary>
    /// The first top-level name or string value that does not decode to a string (the hub reads no deeper), or
    /// null; <paramref name="reference"/> gets the command's "ref" if that one decodes.
    /// </summary>
    private static string? FindUndecodableString(JsonElement root, out string? reference)
    {
        reference = null;
        string? found = null;
        int index = 0;
        foreach (JsonProperty property in root.EnumerateObject())
        {
            index++;
            string name;
            try
            {
                name = property.Name;
            }
            catch (InvalidOperationException)
            {
                found ??= $"property name {index}";
                continue;
            }

            try
            {
                if (property.Value.ValueKind == JsonValueKind.String)
                {
                    _ = property.Value.GetString();
                }

                if (name == "ref")
                {
                    reference = ReadRef(property.Value);
                }
            }
            catch (InvalidOperationException)
            {
                found ??= $"\"{(name.Length <= 64 ? name : name[..64] + "…")}\"";
            }
        }

        return found;
    }
}
