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
        Span<byte> utf8 = stackalloc byte[Length];
        Format(value, utf8);
        writer.WriteStringValue(utf8);
    }

    /// <summary>Bytes in a formatted time.</summary>
    private const int Length = 24;

    /// <summary>
    /// Writes <paramref name="value"/> as <c>yyyy-MM-ddTHH:mm:ss.fffZ</c> in UTC (milliseconds truncated, as the custom
    /// format <c>fff</c> does) into the first <see cref="Length"/> bytes of <paramref name="utf8"/>. Digit by digit:
    /// a custom format string is parsed on every call, and every message that goes out carries a time.
    /// </summary>
    private static void Format(DateTimeOffset value, Span<byte> utf8)
    {
        DateTime utc = value.UtcDateTime;
        (int year, int month, int day) = utc;
        long ms = utc.TimeOfDay.Ticks / TimeSpan.TicksPerMillisecond;
        Digits(utf8[..4], year);
        utf8[4] = (byte)'-';
        Digits(utf8.Slice(5, 2), month);
        utf8[7] = (byte)'-';
        Digits(utf8.Slice(8, 2), day);
        utf8[10] = (byte)'T';
        Digits(utf8.Slice(11, 2), (int)(ms / 3_600_000));
        utf8[13] = (byte)':';
        Digits(utf8.Slice(14, 2), (int)(ms / 60_000 % 60));
        utf8[16] = (byte)':';
        Digits(utf8.Slice(17, 2), (int)(ms / 1000 % 60));
        utf8[19] = (byte)'.';
        Digits(utf8.Slice(20, 3), (int)(ms % 1000));
        utf8[23] = (byte)'Z';
    }

    private static void Digits(Span<byte> into, int value)
    {
        for (int i = into.Length - 1; i >= 0; i--)
        {
            into[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }
}
