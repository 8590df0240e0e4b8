using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Switchboard.Hub.Messages;

/// <summary>
/// Times on the wire: UTC, ISO 8601 with milliseconds and a <c>Z</c> (<c>2026-01-02T03:04:05.678Z</c>), the form
/// JavaScript's <c>Date</c> writes and parses; any ISO 8601 time is read.
/// </summary>
public sealed class UtcTimeConverter : JsonConverter<DateTimeOffset>
{
    /// <inheritdoc/>
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String
            ? DateTimeOffset.Parse(reader.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal)
            : throw new JsonException("A time must be an ISO 8601 string.");

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
    {
        Span<byte> utf8 = stackalloc byte[24];
        value.UtcDateTime.TryFormat(utf8, out int written, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        writer.WriteStringValue(utf8[..written]);
    }
}
