using System.Text.Json.Serialization;

namespace Switchboard.Hub.Messages;

/// <summary>
/// Source-generated serialization of every hub protocol message (no reflection). Names are camelCase, absent
/// optional fields are not written, and reading is strict about the server's messages: a required field missing or
/// null fails the read (a client then ignores that message), while a command's fields are all optional so the server
/// can say which one is missing. Times go through <see cref="UtcTimeConverter"/>, registered for the whole context:
/// named on a property instead, it made writing a message event cost 1.8 times as much. Either way System.Text.Json
/// writes these types through their metadata, not the generated writers (<c>SerializeHandler</c>): those ignore a
/// context's converters, and it uses them only for a context without any; they would write times in another format.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true,
    MaxDepth = 16,
    Converters = [typeof(UtcTimeConverter)])]
[JsonSerializable(typeof(JoinCommand))]
[JsonSerializable(typeof(LeaveCommand))]
[JsonSerializable(typeof(PublishCommand))]
[JsonSerializable(typeof(HistoryCommand))]
[JsonSerializable(typeof(RefreshCommand))]
[JsonSerializable(typeof(PingCommand))]
[JsonSerializable(typeof(WelcomeMessage))]
[JsonSerializable(typeof(JoinedMessage))]
[JsonSerializable(typeof(MessageEvent))]
[JsonSerializable(typeof(AckMessage))]
[JsonSerializable(typeof(LeftMessage))]
[JsonSerializable(typeof(PresenceMessage))]
[JsonSerializable(typeof(GapMessage))]
[JsonSerializable(typeof(LaggingMessage))]
[JsonSerializable(typeof(ResetMessage))]
[JsonSerializable(typeof(HistoryMessage))]
[JsonSerializable(typeof(PongMessage))]
[JsonSerializable(typeof(RefreshedMessage))]
[JsonSerializable(typeof(ErrorMessage))]
internal sealed partial class HubJsonContext : JsonSerializerContext;
