using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Switchboard.Hub.Messages;

namespace Switchboard.Hub;

/// <summary>
/// A client command's outer shape: its <c>type</c> and <c>ref</c>, read in one pass over the text without building a
/// document; <see cref="TryRead"/> then reads the command itself with its source-generated definition.
/// </summary>
internal readonly struct CommandEnvelope
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 16 };
    private static readonly RefConverter RefReader = new();

    private readonly ReadOnlySequence<byte> _utf8;

    private CommandEnvelope(string type, string? reference, ReadOnlySequence<byte> utf8)
    {
        Type = type;
        Ref = reference;
        _utf8 = utf8;
    }

    public string Type { get; }

    public string? Ref { get; }

    /// <summary>
    /// Reads the envelope of one text message; false with an error (code and message) when it is not valid JSON,
    /// not an object, has no string <c>type</c>, or has a top-level name or string that does not decode to text.
    /// </summary>
    public static bool TryParse(ReadOnlySequence<byte> utf8, out CommandEnvelope envelope, out string? errorCode, out string? error, out string? reference)
    {
        envelope = default;
        errorCode = null;
        error = null;
        reference = null;
        string? type = null;
        string? undecodable = null;
        var reader = new Utf8JsonReader(utf8, ReaderOptions);
        try
        {
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                while (reader.Read())
                {
                    // a second value after the first: the reader throws for it
                }

                (errorCode, error) = (HubErrorCodes.BadCommand, "A command must be a JSON object.");
                return false;
            }

            int index = 0;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                index++;
                // Most names and values are plain: compared and skipped as bytes. Only escaped ones are decoded, to
                // find the rare unpaired surrogate escape.
                string? name = reader.ValueIsEscaped ? TryGetText(ref reader) : null;
                if (reader.ValueIsEscaped && name is null)
                {
                    undecodable ??= $"property name {index}";
                }

                ReadOnlySpan<byte> plainName = reader.ValueIsEscaped || reader.HasValueSequence ? default : reader.ValueSpan;
                bool isType = name is null ? !reader.ValueIsEscaped && reader.ValueTextEquals("type"u8) : name == "type";
                bool isRef = name is null ? !reader.ValueIsEscaped && reader.ValueTextEquals("ref"u8) : name == "ref";
                reader.Read();
                if (isType)
                {
                    type = null;
                }

                switch (reader.TokenType)
                {
                    case JsonTokenType.String when isType && !reader.ValueIsEscaped && KnownType(ref reader) is { } known:
                        type = known; // the command types are constants: no string per command
                        break;
                    case JsonTokenType.String when isType || isRef || reader.ValueIsEscaped:
                        string? value = TryGetText(ref reader);
                        if (value is null)
                        {
                            undecodable ??= isType ? "\"type\"" : isRef ? "\"ref\"" : $"\"{Truncate(name ?? System.Text.Encoding.UTF8.GetString(plainName))}\"";
                        }
                        else if (isType)
                        {
                            type = value;
                        }
                        else if (isRef)
                        {
                            reference = value;
                        }

                        break;
                    case JsonTokenType.Number when isRef:
                        reference = reader.HasValueSequence ? System.Text.EncodingExtensions.GetString(System.Text.Encoding.UTF8, reader.ValueSequence) : System.Text.Encoding.UTF8.GetString(reader.ValueSpan);
                        break;
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        reader.Skip();
                        break;
                }
            }

            while (reader.Read())
            {
                // trailing content after the object: the reader throws for it
            }
        }
        catch (JsonException ex)
        {
            (errorCode, error) = (HubErrorCodes.BadJson, "Invalid JSON: " + ex.Message.Split('.')[0] + ".");
            reference = null;
            return false;
        }

        if (undecodable is not null)
        {
            // JSON's grammar allows "\ud800" alone, but it is not text: .NET cannot turn it into a string.
            (errorCode, error) = (HubErrorCodes.BadJson, $"Invalid JSON: {undecodable} has an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF).");
            return false;
        }

        if (type is null)
        {
            (errorCode, error) = (HubErrorCodes.BadCommand, "A command needs a string \"type\".");
            return false;
        }

        envelope = new CommandEnvelope(type, reference, utf8);
        return true;
    }

    /// <summary>
    /// Reads the whole command as <typeparamref name="T"/>; false with an error when a field has the wrong type. The
    /// code names the field's kind, as docs/protocol.md lists: a bad number is <c>invalid_argument</c>, a bad room
    /// <c>invalid_room</c>, and so on.
    /// </summary>
    public bool TryRead<T>(out T? command, out string? errorCode, out string? error)
        where T : ClientCommand
    {
        if (typeof(T) == typeof(PublishCommand) && TryReadPublish() is { } publish)
        {
            command = (T)(ClientCommand)publish;
            (errorCode, error) = (null, null);
            return true;
        }

        var reader = new Utf8JsonReader(_utf8, ReaderOptions);
        try
        {
            command = JsonSerializer.Deserialize(ref reader, HubJson.TypeInfo<T>());
            (errorCode, error) = (null, null);
            return command is not null;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            string field = ex is JsonException { Path: string path } && path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : "";
            (errorCode, error) = field switch
            {
                "since" or "before" or "limit" => (HubErrorCodes.InvalidArgument, $"\"{field}\" must be a non-negative integer."),
                "room" => (HubErrorCodes.InvalidRoom, "\"room\" must be a string."),
                "text" => (HubErrorCodes.InvalidText, "\"text\" must be a string."),
                "id" => (HubErrorCodes.InvalidId, "\"id\" must be a string."),
                "" => (HubErrorCodes.BadCommand, $"'{Truncate(Type)}' could not be read."),
                _ => (HubErrorCodes.BadCommand, $"\"{Truncate(field)}\" has the wrong type."),
            };
            command = null;
            return false;
        }
    }

    /// <summary>
    /// A publish read field by field, as the full reader would read it, in the common case: <c>room</c>, <c>text</c> and
    /// <c>id</c> strings or null, <c>ref</c> as <see cref="RefConverter"/> reads it, anything else skipped. Null
    /// for anything else (a field of another type, a string that is not text), which <see cref="TryRead{T}"/> then
    /// reads with System.Text.Json to name the error. Every message published comes through here, and the
    /// serializer's constructor-parameter path costs several times this.
    /// </summary>
    internal PublishCommand? TryReadPublish()
    {
        var reader = new Utf8JsonReader(_utf8, ReaderOptions);
        string? room = null, text = null, id = null, reference = null;
        try
        {
            reader.Read();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                int field = reader.ValueTextEquals("room"u8) ? 1
                    : reader.ValueTextEquals("text"u8) ? 2
                    : reader.ValueTextEquals("id"u8) ? 3
                    : reader.ValueTextEquals("ref"u8) ? 4
                    : reader.ValueTextEquals("type"u8) ? 5
                    : 0;
                reader.Read();
                switch (field)
                {
                    case 0:
                        reader.Skip();
                        break;
                    case 4:
                        reference = ReadRef(ref reader);
                        break;
                    case 5 when reader.TokenType is not JsonTokenType.String:
                        return null;
                    case 5:
                        break;
                    default:
                        if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null))
                        {
                            return null;
                        }

                        string? value = reader.GetString(); // null for null; throws for a string that is not text
                        if (field == 1)
                        {
                            room = value;
                        }
                        else if (field == 2)
                        {
                            text = value;
                        }
                        else
                        {
                            id = value;
                        }

                        break;
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return null;
        }

        return new PublishCommand(room, text, id) { Ref = reference };
    }

    /// <summary>A <c>ref</c> as <see cref="RefConverter"/> reads it: a string, a number's text, or null for anything else.</summary>
    private static string? ReadRef(ref Utf8JsonReader reader) => RefReader.Read(ref reader, typeof(string), HubJson.Options);

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";

    /// <summary>The command type the current string names, as its constant; null for any other string.</summary>
    private static string? KnownType(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("publish"u8) ? HubMessageTypes.Publish
        : reader.ValueTextEquals("join"u8) ? HubMessageTypes.Join
        : reader.ValueTextEquals("leave"u8) ? HubMessageTypes.Leave
        : reader.ValueTextEquals("history"u8) ? HubMessageTypes.History
        : reader.ValueTextEquals("ping"u8) ? HubMessageTypes.Ping
        : reader.ValueTextEquals("refresh"u8) ? HubMessageTypes.Refresh
        : null;

    /// <summary>The current name or string as text; null when it has an unpaired surrogate escape (valid JSON, not text).</summary>
    private static string? TryGetText(ref Utf8JsonReader reader)
    {
        try
        {
            return reader.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
