using System.Text.Json;
using Switchboard.Hub;

namespace Switchboard.Server;

/// <summary>The seed chat contract (/ws): JSON {"name","message"} in, {"name","message","time"} out, in the hub's default room.</summary>
internal static class SeedChat
{
    /// <summary>The room /ws clients talk in.</summary>
    public const string Room = Hub.Hub.DefaultRoom;

    /// <summary>The encoder, one instance: a room message caches what it produced for every /ws listener.</summary>
    public static readonly Func<StoredMessage, OutboundMessage> Encoder = Encode;

    /// <summary>Encodes a stored message the way the seed server sends it (time is server local HH:MM:SS).</summary>
    public static OutboundMessage Encode(StoredMessage m)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(128);
        buffer.Advance(OutboundMessage.Headroom); // left free: the engine frames the message in place
        using (var w = new Utf8JsonWriter(buffer, HubProtocol.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("name", m.Name);
            w.WriteString("message", m.Text);
            w.WriteString("time", m.Time.ToLocalTime().ToString("HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture));
            w.WriteEndObject();
        }

        return OutboundMessage.WithHeadroom(buffer.WrittenSpan.ToArray());
    }
}
