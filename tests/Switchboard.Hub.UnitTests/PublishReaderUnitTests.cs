using System.Buffers;
using System.Text;
using Switchboard.Hub.Messages;

namespace Switchboard.Hub.UnitTests;

/// <summary>The publish command's own reader against System.Text.Json's: the same command, or the same error.</summary>
public sealed class PublishReaderUnitTests
{
    private static readonly string[] Commands =
    [
        """{"type":"publish","room":"lobby","text":"hi","id":"m1"}""",
        """{"type":"publish","room":"lobby","text":"hi","id":"m1","ref":"r7"}""",
        """{"ref":12.5e1,"type":"publish","room":"lobby","text":"hi"}""",
        """{"type":"publish","text":"only text"}""",
        """{"type":"publish"}""",
        """{"type":"publish","room":null,"text":null,"id":null,"ref":null}""",
        """{"type":"publish","r\u006fom":"esc\"aped \u00e9 \ud83d\ude00","t\u0065xt":"<b>\n</b>","id":"\u0041"}""",
        """{"type":"publish","room":"a","room":"b","text":"last wins","text":"second"}""",
        """{"type":"publish","extra":{"nested":[1,2,{"x":null}]},"more":[true,false],"n":3,"room":"r","text":"t"}""",
        """{"type":"publish","Room":"case matters","text":"t"}""",
        """{"type":"publish","room":5,"text":"t"}""",
        """{"type":"publish","room":"r","text":["not","text"]}""",
        """{"type":"publish","room":"r","text":"t","id":true}""",
        """{"type":"publish","room":"r","text":"t","ref":{"no":1}}""",
        """{"type":"publish","room":"r","text":"t","ref":false}""",
    ];

    public static TheoryData<string> All() => [.. Commands];

    [Theory]
    [MemberData(nameof(All))]
    public void Reads_a_publish_as_the_serializer_does_or_leaves_it_to_the_serializer(string json)
    {
        var utf8 = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(json));
        Assert.True(CommandEnvelope.TryParse(utf8, out CommandEnvelope envelope, out _, out _, out _));

        PublishCommand? expected = null;
        string? expectedError = null;
        try
        {
            expected = HubJson.Read<PublishCommand>(utf8);
        }
        catch (System.Text.Json.JsonException ex)
        {
            expectedError = ex.Message;
        }

        PublishCommand? fast = envelope.TryReadPublish();
        bool read = envelope.TryRead(out PublishCommand? command, out string? code, out string? error);
        if (expected is not null)
        {
            Assert.True(read, error);
            Assert.Equal(expected, command); // records: field by field, Ref included
            Assert.Equal(expected, fast);
        }
        else
        {
            Assert.Null(fast); // anything the serializer refuses is left to it, to name the error
            Assert.False(read, $"read although the serializer said: {expectedError}");
            Assert.NotNull(code);
        }
    }

    [Fact]
    public void A_string_that_is_not_text_is_refused_before_either_reader()
    {
        byte[] json = Encoding.UTF8.GetBytes("""{"type":"publish","room":"r","text":"\ud800 alone"}""");
        Assert.False(CommandEnvelope.TryParse(new ReadOnlySequence<byte>(json), out _, out string? code, out _, out _));
        Assert.Equal(HubErrorCodes.BadJson, code);
    }

    [Fact]
    public void The_common_publishes_are_read_without_the_serializer()
    {
        foreach (string json in Commands[..10])
        {
            Assert.True(CommandEnvelope.TryParse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(json)), out CommandEnvelope envelope, out _, out _, out _));
            Assert.NotNull(envelope.TryReadPublish());
        }
    }
}
