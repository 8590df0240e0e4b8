using System.Text;

namespace Switchboard.Protocol.UnitTests;

public class FrameDecoderUnitTests
{
    private static readonly FrameDecoderOptions Server = new() { Role = WebSocketRole.Server };
    private static readonly FrameDecoderOptions Client = new() { Role = WebSocketRole.Client };

    // RFC 6455 §5.7 examples, each fed at every split point.
    [Fact]
    public void Rfc_5_7_single_frame_unmasked_text() =>
        Assert.Equal(["text:Hello"], DecoderHarness.RunAtEverySplit(Frames.Hex("81 05 48 65 6c 6c 6f"), Client).Events);

    [Fact]
    public void Rfc_5_7_single_frame_masked_text() =>
        Assert.Equal(["text:Hello"], DecoderHarness.RunAtEverySplit(Frames.Hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), Server).Events);

    [Fact]
    public void Rfc_5_7_fragmented_unmasked_text() =>
        Assert.Equal(["text:Hello"], DecoderHarness.RunAtEverySplit(Frames.Hex("01 03 48 65 6c 80 02 6c 6f"), Client).Events);

    [Fact]
    public void Rfc_5_7_unmasked_ping_and_masked_pong()
    {
        Assert.Equal(["ping:48656C6C6F"], DecoderHarness.RunAtEverySplit(Frames.Hex("89 05 48 65 6c 6c 6f"), Client).Events);
        Assert.Equal(["pong:48656C6C6F"], DecoderHarness.RunAtEverySplit(Frames.Hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"), Server).Events);
    }

    [Fact]
    public void Rfc_5_7_256_bytes_and_64KiB_binary_unmasked()
    {
        byte[] small = [.. Enumerable.Range(0, 256).Select(i => (byte)i)];
        byte[] f = Frames.Concat(Frames.Hex("82 7E 01 00"), small);
        Assert.Equal(["binary:" + Convert.ToHexString(small)], DecoderHarness.Run(f, Client).Events);
        byte[] big = [.. Enumerable.Range(0, 65536).Select(i => (byte)(i * 7))];
        byte[] g = Frames.Concat(Frames.Hex("82 7F 00 00 00 00 00 01 00 00"), big);
        Assert.Equal(["binary:" + Convert.ToHexString(big)], DecoderHarness.Run(g, Client, 3, 7, 11, 30000).Events);
    }

    [Fact]
    public void Mixed_stream_with_interleaved_control_frames_at_every_split()
    {
        byte[] input = Frames.Concat(
            Frames.Text("héllo ", fin: false),
            Frames.Build(Opcode.Ping, "p1"u8.ToArray()),
            Frames.Build(Opcode.Continuation, Encoding.UTF8.GetBytes("wörld €𝄞"), fin: false),
            Frames.Build(Opcode.Pong, []),
            Frames.Build(Opcode.Continuation, [], fin: true),
            Frames.Build(Opcode.Binary, [1, 2, 3]),
            Frames.Build(Opcode.Text, []),
            Frames.Build(Opcode.Close, [0x03, 0xE8, (byte)'b', (byte)'y', (byte)'e']));
        Assert.Equal(
            ["ping:7031", "pong:", "text:héllo wörld €𝄞", "binary:010203", "text:", "close:1000:bye"],
            DecoderHarness.RunAtEverySplit(input, Server).Events);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(7)]
    public void Reserved_bits_without_extension_fail_with_1002(byte rsv) =>
        Assert.Equal(["error:1002"], DecoderHarness.RunAtEverySplit(Frames.Build(Opcode.Text, "x"u8.ToArray(), rsv: rsv), Server).Events);

    [Theory]
    [InlineData(3)] [InlineData(4)] [InlineData(5)] [InlineData(6)] [InlineData(7)]
    [InlineData(11)] [InlineData(12)] [InlineData(13)] [InlineData(14)] [InlineData(15)]
    public void Reserved_opcodes_fail_with_1002(byte opcode) =>
        Assert.Equal(["error:1002"], DecoderHarness.RunAtEverySplit(Frames.Build((Opcode)opcode, [1]), Server).Events);

    [Fact]
    public void Unmasked_frame_to_server_and_masked_frame_to_client_fail_with_1002()
    {
        Assert.Equal(["error:1002"], DecoderHarness.Run(Frames.Text("x", masked: false), Server).Events);
        Assert.Equal(["error:1002"], DecoderHarness.Run(Frames.Text("x", masked: true), Client).Events);
    }

    [Fact]
    public void Control_frame_over_125_bytes_fails_with_1002_before_its_payload_arrives()
    {
        byte[] f = Frames.Build(Opcode.Ping, new byte[126]);
        Assert.Equal(["error:1002"], DecoderHarness.Run(f[..8], Server).Events);
        Assert.Equal(["error:1002"], DecoderHarness.RunAtEverySplit(f, Server).Events);
    }

    [Fact]
    public void Fragmented_control_frame_fails_with_1002() =>
        Assert.Equal(["error:1002"], DecoderHarness.RunAtEverySplit(Frames.Build(Opcode.Ping, [1], fin: false), Server).Events);

    [Fact]
    public void Continuation_without_start_fails_with_1002() =>
        Assert.Equal(["error:1002"], DecoderHarness.RunAtEverySplit(Frames.Build(Opcode.Continuation, [1]), Server).Events);

    [Fact]
    public void New_data_frame_inside_fragmented_message_fails_with_1002() =>
        Assert.Equal(["error:1002"], DecoderHarness.RunAtEverySplit(
            Frames.Concat(Frames.Text("a", fin: false), Frames.Text("b")), Server).Events);

    [Fact]
    public void Valid_message_before_a_bad_frame_is_delivered_first() =>
        Assert.Equal(["text:first", "binary:01", "error:1002"], DecoderHarness.RunAtEverySplit(
            Frames.Concat(Frames.Text("first"), Frames.Build(Opcode.Binary, [1]), Frames.Build((Opcode)5, [])), Server).Events);

    [Fact]
    public void Length_with_most_significant_bit_set_fails_with_1002() =>
        Assert.Equal(["error:1002"], DecoderHarness.RunAtEverySplit(Frames.Hex("82 FF 80 00 00 00 00 00 00 00 37 fa 21 3d"), Server).Events);

    [Fact]
    public void Message_over_limit_fails_with_1009_from_the_header_alone()
    {
        var opts = new FrameDecoderOptions { Role = WebSocketRole.Server, MaxMessageSize = 1000 };
        // 2^62 declared, only the header sent: refused without waiting for (or allocating) the payload.
        Assert.Equal(["error:1009"], DecoderHarness.Run(Frames.Hex("82 FF 40 00 00 00 00 00 00 00 37 fa 21 3d"), opts).Events);
        // The limit applies to the sum of fragments.
        byte[] twoFrames = Frames.Concat(Frames.Build(Opcode.Binary, new byte[600], fin: false), Frames.Build(Opcode.Continuation, new byte[600]));
        Assert.Equal(["error:1009"], DecoderHarness.Run(twoFrames, opts).Events);
        Assert.Equal(["binary:" + new string('0', 2000)], DecoderHarness.Run(Frames.Build(Opcode.Binary, new byte[1000]), opts).Events);
    }

    [Theory]
    [InlineData(new byte[] { 0x03 }, 1002)]                 // 1-byte payload
    [InlineData(new byte[] { 0x00, 0x00 }, 1002)]           // 0
    [InlineData(new byte[] { 0x03, 0xE7 }, 1002)]           // 999
    [InlineData(new byte[] { 0x03, 0xEC }, 1002)]           // 1004
    [InlineData(new byte[] { 0x03, 0xED }, 1002)]           // 1005
    [InlineData(new byte[] { 0x03, 0xEE }, 1002)]           // 1006
    [InlineData(new byte[] { 0x03, 0xF7 }, 1002)]           // 1015
    [InlineData(new byte[] { 0x03, 0xF8 }, 1002)]           // 1016
    [InlineData(new byte[] { 0x0B, 0xB7 }, 1002)]           // 2999
    [InlineData(new byte[] { 0x13, 0x88 }, 1002)]           // 5000
    [InlineData(new byte[] { 0x03, 0xE8, 0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80 }, 1002)] // bad UTF-8 reason
    public void Invalid_close_payloads_fail(byte[] payload, int code) =>
        Assert.Equal([$"error:{code}"], DecoderHarness.RunAtEverySplit(Frames.Build(Opcode.Close, payload), Server).Events);

    [Theory]
    [InlineData(1000)] [InlineData(1001)] [InlineData(1002)] [InlineData(1003)] [InlineData(1007)] [InlineData(1008)]
    [InlineData(1009)] [InlineData(1010)] [InlineData(1011)] [InlineData(1012)] [InlineData(1013)] [InlineData(1014)]
    [InlineData(3000)] [InlineData(3999)] [InlineData(4000)] [InlineData(4999)]
    public void Valid_close_codes_are_reported(int code) =>
        Assert.Equal([$"close:{code}:"], DecoderHarness.Run(Frames.Build(Opcode.Close, [(byte)(code >> 8), (byte)code]), Server).Events);

    [Fact]
    public void Empty_close_reports_1005() =>
        Assert.Equal(["close:1005:"], DecoderHarness.RunAtEverySplit(Frames.Build(Opcode.Close, []), Server).Events);

    [Fact]
    public void Invalid_utf8_fails_with_1007_across_fragments() =>
        Assert.Equal(["error:1007"], DecoderHarness.RunAtEverySplit(Frames.Concat(
            Frames.Build(Opcode.Text, [0xCE, 0xBA, 0xE1], fin: false),
            Frames.Build(Opcode.Continuation, [0xBD, 0xB9, 0xED], fin: false),
            Frames.Build(Opcode.Continuation, [0xA0, 0x80])), Server).Events);

    [Fact]
    public void Invalid_utf8_is_detected_within_a_frame_before_the_frame_ends()
    {
        // A text frame announcing 100 bytes; only "ok" + ED A0 has arrived. The decoder must not wait.
        byte[] frame = Frames.Build(Opcode.Text, [.. "ok"u8, 0xED, 0xA0, .. new byte[96]]);
        int headerLength = 2 + 4;
        var result = DecoderHarness.Run(frame[..(headerLength + 4)], Server);
        Assert.Equal(["error:1007"], result.Events);
    }

    [Fact]
    public void Truncated_utf8_at_message_end_fails_with_1007() =>
        Assert.Equal(["error:1007"], DecoderHarness.RunAtEverySplit(Frames.Build(Opcode.Text, [0x61, 0xE2, 0x82]), Server).Events);

    [Fact]
    public void Valid_utf8_split_inside_a_code_point_across_fragments_is_accepted() =>
        Assert.Equal(["text:€𝄞"], DecoderHarness.RunAtEverySplit(Frames.Concat(
            Frames.Build(Opcode.Text, [0xE2], fin: false),
            Frames.Build(Opcode.Continuation, [0x82, 0xAC, 0xF0, 0x9D], fin: false),
            Frames.Build(Opcode.Continuation, [0x84, 0x9E])), Server).Events);

    [Fact]
    public void Decoder_refuses_input_after_a_protocol_error()
    {
        var d = new FrameDecoder(Server);
        var r = new System.Buffers.SequenceReader<byte>(new System.Buffers.ReadOnlySequence<byte>(Frames.Build((Opcode)3, [])));
        d.Decode(ref r, out _);
        Assert.True(d.IsFaulted);
        Assert.Throws<InvalidOperationException>(() =>
        {
            var r2 = new System.Buffers.SequenceReader<byte>(new System.Buffers.ReadOnlySequence<byte>(new byte[2]));
            d.Decode(ref r2, out _);
        });
    }
}
