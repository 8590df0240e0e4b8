using System.Text;
using Switchboard.Hub;
using Switchboard.Hub.Messages;
using Switchboard.Protocol;

namespace Switchboard.WebSockets.Tests.Engine;

public class InPlaceFramingTests
{
    [Fact]
    public void The_hub_leaves_exactly_the_room_the_engine_frames_in() => Assert.Equal(PreparedFrame.HeaderRoom, OutboundMessage.Headroom);

    [Theory]
    [InlineData(0)]
    [InlineData(125)]
    [InlineData(126)]
    [InlineData(65_535)]
    [InlineData(65_536)]
    public void A_wrapped_payload_is_the_same_frame_as_a_copied_one(int length)
    {
        byte[] payload = new byte[length];
        new Random(length).NextBytes(payload);
        byte[] buffer = new byte[PreparedFrame.HeaderRoom + length];
        payload.CopyTo(buffer, PreparedFrame.HeaderRoom);

        PreparedFrame wrapped = PreparedFrame.Wrap(MessageType.Binary, buffer);
        PreparedFrame copied = PreparedFrame.Create(MessageType.Binary, payload);

        Assert.Equal(copied.ServerFrame.ToArray(), wrapped.ServerFrame.ToArray());
        Assert.Equal(payload, wrapped.Payload.ToArray());
    }

    [Fact]
    public void A_buffer_without_room_for_the_header_is_refused() =>
        Assert.Throws<ArgumentException>(() => PreparedFrame.Wrap(MessageType.Text, new byte[PreparedFrame.HeaderRoom - 1]));

    [Fact]
    public void A_hub_message_is_framed_where_it_lies_and_its_json_is_untouched()
    {
        OutboundMessage message = HubProtocol.Build(new PongMessage { Ref = "r1" });
        byte[] json = message.Utf8Json.ToArray();
        Assert.NotNull(message.HeadroomBuffer);

        PreparedFrame frame = PreparedFrame.Wrap(MessageType.Text, message.HeadroomBuffer!);

        Assert.Equal(json, message.Utf8Json.ToArray());
        Assert.True(message.Utf8Json.Span.Overlaps(frame.Payload.Span)); // the same bytes, not a copy
        Assert.Equal(PreparedFrame.Create(MessageType.Text, json).ServerFrame.ToArray(), frame.ServerFrame.ToArray());
        Assert.Equal("{\"type\":\"pong\",\"ref\":\"r1\"}", Encoding.UTF8.GetString(json));
    }
}
