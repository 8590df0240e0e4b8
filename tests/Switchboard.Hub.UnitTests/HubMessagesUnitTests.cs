using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Switchboard.Hub.Messages;

namespace Switchboard.Hub.UnitTests;

/// <summary>The protocol's messages on the wire, as docs/protocol.md shows them.</summary>
public sealed class HubMessagesUnitTests
{
    private static string Json<T>(T message) => Encoding.UTF8.GetString(HubJson.Write(message));

    private static ReadOnlySequence<byte> Utf8(string json) => new(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void Server_messages_start_with_their_type_and_leave_out_what_is_absent()
    {
        Assert.Equal("""{"type":"ack","ref":"r1","id":"m1","room":"general","offset":7}""", Json(new AckMessage("m1", "general", 7) { Ref = "r1" }));
        Assert.Equal("""{"type":"ack","id":"m1","room":"general","offset":7,"duplicate":true}""", Json(new AckMessage("m1", "general", 7, Duplicate: true)));
        Assert.Equal("""{"type":"error","code":"busy","message":"later"}""", Json(new ErrorMessage("busy", "later")));
        Assert.Equal("""{"type":"member_left","room":"r","user":"u","name":"U"}""", Json(new PresenceMessage(HubMessageTypes.MemberLeft, "r", "u", "U")));
    }

    [Fact]
    public void Times_are_utc_with_milliseconds_and_read_back()
    {
        var time = new DateTimeOffset(2026, 1, 2, 4, 4, 5, 678, TimeSpan.FromHours(1));
        string json = Json(new MessageEvent("r", 1, "i", "u", "U", "hi", time));
        Assert.Contains("\"time\":\"2026-01-02T03:04:05.678Z\"", json, StringComparison.Ordinal);
        Assert.Equal(time, HubJson.Read<MessageEvent>(Utf8(json)).Time);
    }

    [Fact]
    public void The_messages_that_carry_a_time_are_written_field_for_field()
    {
        var time = new DateTimeOffset(2026, 12, 1, 5, 5, 6, 789, TimeSpan.FromHours(1));
        Assert.Equal(
            """
            {"type":"message","room":"r","offset":7,"id":"i","from":"u","name":"U","text":"\u003Cb\u003E\u0022hi\u0022\u003C/b\u003E \u00E9 \uD83D\uDE00","time":"2026-12-01T04:05:06.789Z"}
            """,
            Json(new MessageEvent("r", 7, "i", "u", "U", "<b>\"hi\"</b> é 😀", time)));
        Assert.Equal(
            """
            {"type":"welcome","connectionId":"c","user":"u","name":"U","serverTime":"2026-12-01T04:05:06.789Z","protocol":1}
            """,
            Json(new WelcomeMessage("c", "u", "U", time, 1)));
        Assert.Equal(
            """
            {"type":"history","ref":"h1","room":"r","epoch":"e","messages":[{"offset":7,"id":"i","from":"u","name":"U","text":"hi","time":"2026-12-01T04:05:06.789Z"}],"more":false}
            """,
            Json(new HistoryMessage("r", "e", [new HistoryItem(7, "i", "u", "U", "hi", time)], More: false) { Ref = "h1" }));
    }

    [Fact]
    public void Times_are_written_by_the_converter_of_the_context_not_one_named_on_a_property()
    {
        // Named on a property, the converter sent System.Text.Json down a slower path for the whole message: 398
        // against 218 ns for a message event (docs/benchmarks.md). The types that carry a time name none.
        foreach (JsonTypeInfo info in (JsonTypeInfo[])[HubJson.TypeInfo<MessageEvent>(), HubJson.TypeInfo<WelcomeMessage>(), HubJson.TypeInfo<HistoryItem>()])
        {
            Assert.Contains(info.Properties, p => p.PropertyType == typeof(DateTimeOffset));
            Assert.All(info.Properties, p => Assert.Null(p.CustomConverter));
        }
    }

    [Fact]
    public void Times_are_written_as_the_custom_format_would_for_any_time()
    {
        var random = new Random(6455);
        DateTimeOffset[] edges =
        [
            DateTimeOffset.MinValue, DateTimeOffset.MaxValue, new(1, 1, 1, 0, 0, 0, TimeSpan.Zero),
            new(2026, 12, 31, 23, 59, 59, 999, TimeSpan.Zero), new(2026, 1, 1, 0, 30, 0, TimeSpan.FromHours(1)), // the day before in UTC
            new(2024, 2, 29, 12, 0, 0, 5, TimeSpan.FromHours(-9.5)),
            new DateTimeOffset(2026, 6, 1, 1, 2, 3, TimeSpan.Zero).AddTicks(9_999), // below a millisecond: truncated
        ];
        IEnumerable<DateTimeOffset> randomTimes = Enumerable.Range(0, 5000).Select(_ =>
            new DateTimeOffset(random.NextInt64(DateTime.MinValue.Ticks + TimeSpan.TicksPerDay, DateTime.MaxValue.Ticks - TimeSpan.TicksPerDay), TimeSpan.Zero)
                .ToOffset(TimeSpan.FromMinutes(random.Next(-14 * 60, 14 * 60))));
        var options = new JsonSerializerOptions { Converters = { new UtcTimeConverter() } };
        foreach (DateTimeOffset time in edges.Concat(randomTimes))
        {
            string expected = "\"" + time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture) + "\"";
            Assert.Equal(expected, JsonSerializer.Serialize(time, options));
        }
    }

    [Fact]
    public void A_server_message_with_a_required_field_missing_or_mistyped_is_not_read()
    {
        Assert.Throws<JsonException>(() => HubJson.Read<AckMessage>(Utf8("""{"type":"ack","id":"m1","offset":7}""")));
        Assert.Throws<JsonException>(() => HubJson.Read<AckMessage>(Utf8("""{"type":"ack","id":"m1","room":"r","offset":"7"}""")));
        Assert.Throws<JsonException>(() => HubJson.Read<AckMessage>(Utf8("""{"type":"ack","id":null,"room":"r","offset":7}""")));
        Assert.Equal(7, HubJson.Read<AckMessage>(Utf8("""{"type":"ack","id":"m1","room":"r","offset":7,"later":{"a":1}}""")).Offset);
    }

    [Fact]
    public void Commands_read_with_fields_missing_and_a_numeric_or_odd_ref()
    {
        JoinCommand join = HubJson.Read<JoinCommand>(Utf8("""{"type":"join","ref":42}"""));
        Assert.Null(join.Room);
        Assert.Equal("42", join.Ref);
        Assert.Null(HubJson.Read<PingCommand>(Utf8("""{"type":"ping","ref":{"x":[1]}}""")).Ref);
        Assert.Equal("""{"type":"publish","ref":"p:1","room":"r","text":"hé \"q\"","id":"1"}""",
            Json(new PublishCommand("r", "hé \"q\"", "1") { Ref = "p:1" }).Replace("\\u00E9", "é", StringComparison.Ordinal).Replace("\\u0022", "\\\"", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("""{"type":"pong"}""", "pong")]
    [InlineData("""{"ref":"x","a":[{"type":"no"}],"type":"lagging"}""", "lagging")]
    [InlineData("""{"type":5}""", null)]
    [InlineData("""[{"type":"ack"}]""", null)]
    [InlineData("""not json""", null)]
    public void The_type_is_read_without_the_rest(string json, string? type)
    {
        Assert.Equal(type is not null, HubJson.TryReadType(Utf8(json), out string? read));
        Assert.Equal(type, read);
    }

    [Fact]
    public void Every_message_type_has_a_definition_that_serializes()
    {
        foreach (Type t in HubMessageTypes.ServerMessages.Values.Concat(HubMessageTypes.ClientCommands.Values))
        {
            Assert.NotNull(HubJson.Options.GetTypeInfo(t));
        }
    }
}
