using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Switchboard.Hub.Messages;

/// <summary>How the hub protocol's messages are read and written: source-generated, no reflection.</summary>
public static class HubJson
{
    /// <summary>Options that resolve every message type of this assembly (read-only).</summary>
    public static JsonSerializerOptions Options => HubJsonContext.Default.Options;

    /// <summary>The serialization metadata of a message type (a command, a server message or a part of one).</summary>
    /// <exception cref="NotSupportedException">The type is not one of the protocol's.</exception>
    public static JsonTypeInfo<T> TypeInfo<T>() =>
        TypeInfoCache<T>.Value ?? throw new NotSupportedException($"{typeof(T)} is not a hub protocol message.");

    /// <summary>
    /// The <c>type</c> of a message, read without reading the rest (to choose the type to read it as); false when the
    /// text is not a JSON object with a string <c>type</c>.
    /// </summary>
    public static bool TryReadType(ReadOnlySequence<byte> utf8, [NotNullWhen(true)] out string? type)
    {
        type = null;
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 64 });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isType = reader.ValueTextEquals("type"u8);
                reader.Read();
                if (isType && reader.TokenType == JsonTokenType.String)
                {
                    type = reader.GetString();
                    return type is not null;
                }

                reader.Skip();
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // not JSON, or a type that is not text
        }

        return false;
    }

    /// <summary>Reads a whole message as <typeparamref name="T"/>.</summary>
    /// <exception cref="JsonException">It is not one: not JSON, or a required field missing or of another type.</exception>
    public static T Read<T>(ReadOnlySequence<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 64 });
        try
        {
            return JsonSerializer.Deserialize(ref reader, TypeInfo<T>()) ?? throw new JsonException($"A {typeof(T).Name} cannot be null.");
        }
        catch (InvalidOperationException ex)
        {
            throw new JsonException(ex.Message, ex); // a string that is not text (an unpaired surrogate escape)
        }
    }

    /// <summary>Writes a message as UTF-8 JSON.</summary>
    public static byte[] Write<T>(T message) => JsonSerializer.SerializeToUtf8Bytes(message, TypeInfo<T>());

    private static class TypeInfoCache<T>
    {
        public static readonly JsonTypeInfo<T>? Value = HubJsonContext.Default.GetTypeInfo(typeof(T)) as JsonTypeInfo<T>;
    }
}
