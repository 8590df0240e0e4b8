using System.Buffers;
using Switchboard.Protocol.Extensions;
using static Switchboard.Protocol.UnitTests.Frames;

namespace Switchboard.Protocol.UnitTests;

/// <summary>
/// The connection state machine without I/O: every RFC 6455 §5.7 and RFC 7692 §7.2.3 example, the closing handshake,
/// failing, pong answers, keepalive and close deadlines, each fed whole, at every split point and byte by byte.
/// </summary>
public class WebSocketProtocolUnitTests
{
    private static readonly WebSocketRole Server = WebSocketRole.Server;
    private static readonly WebSocketRole Client = WebSocketRole.Client;

    // ------------------------------------------------------------------ RFC 6455 §5.7

    [Fact]
    public void Rfc6455_single_frame_unmasked_text_reaches_a_client() =>
        Assert.Equal("text:Hello || ", ProtocolHarness.RunAtEverySplit(Hex("81 05 48 65 6c 6c 6f"), Client).Render());

    [Fact]
    public void Rfc6455_single_frame_masked_text_reaches_a_server() =>
        Assert.Equal("text:Hello || ", ProtocolHarness.RunAtEverySplit(Hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), Server).Render());

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rfc6455_fragmented_unmasked_text_is_one_message(bool chunks) =>
        Assert.Equal("text:Hello || ", ProtocolHarness.RunAtEverySplit(Hex("01 03 48 65 6c 80 02 6c 6f"), Client, chunks: chunks).Render());

    [Fact]
    public void Rfc6455_ping_is_answered_with_its_payload_masked_by_a_client() =>
        Assert.Equal("ping:48656C6C6F || sent-pong:48656C6C6F", ProtocolHarness.RunAtEverySplit(Hex("89 05 48 65 6c 6c 6f"), Client).Render());

    [Fact]
    public void Rfc6455_masked_pong_reaches_a_server() =>
        Assert.Equal("pong:48656C6C6F || ", ProtocolHarness.RunAtEverySplit(Hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"), Server).Render());

    [Theory]
    [InlineData(256, "82 7e 01 00")]
    [InlineData(65536, "82 7f 00 00 00 00 00 01 00 00")]
    public void Rfc6455_binary_with_extended_lengths(int length, string header)
    {
        byte[] payload = [.. Enumerable.Range(0, length).Select(i => (byte)i)];
        ProtocolHarness h = length > 1000
            ? ProtocolHarness.Run(Concat(Hex(header), payload), Client, splits: [1, 3, 9, 10, 500, 65_000])
            : ProtocolHarness.RunAtEverySplit(Concat(Hex(header), payload), Client);
        Assert.Equal("binary:" + Convert.ToHexString(payload) + " || ", h.Render());
    }

    // ------------------------------------------------------------------ RFC 7692 §7.2.3

    [Theory]
    [InlineData("c1 07 f2 48 cd c9 c9 07 00", "text:Hello")] // §7.2.3.1
    [InlineData("41 03 f2 48 cd 80 04 c9 c9 07 00", "text:Hello")] // §7.2.3.1, fragmented
    [InlineData("c1 07 f2 48 cd c9 c9 07 00 c1 05 f2 00 11 00 00", "text:Hello | text:Hello")] // §7.2.3.2, context takeover
    [InlineData("c1 0b 00 05 00 fa ff 48 65 6c 6c 6f 00", "text:Hello")] // §7.2.3.3, a stored block
    [InlineData("c1 08 f3 48 cd c9 c9 07 00 00", "text:Hello")] // §7.2.3.4, BFINAL set
    [InlineData("c1 0d f2 48 05 00 00 00 ff ff ca c9 c9 07 00", "text:Hello")] // §7.2.3.5, two DEFLATE blocks
    public void Rfc7692_examples_inflate(string frames, string expected)
    {
        Assert.Equal(expected + " || ", ProtocolHarness.RunAtEverySplit(Hex(frames), Client, ProtocolHarness.Deflate).Render());
        Assert.Equal(expected + " || ", ProtocolHarness.RunAtEverySplit(Hex(frames), Client, ProtocolHarness.Deflate, chunks: true).Render());
    }

    [Fact]
    public void Inflated_size_is_limited_by_max_message_size()
    {
        byte[] zeros = new byte[100_000];
        using var c = new DeflateCompressor();
        byte[] compressed = new byte[1000];
        int n = c.Compress(zeros, compressed, resetContext: true);
        Assert.InRange(n, 1, 999); // 100 kB of zeros on the wire in a few hundred bytes
        byte[] frame = Build(Opcode.Binary, compressed[..n], masked: false, rsv: 0x4);
        var settings = new WebSocketProtocolSettings { MaxMessageSize = 65_536 };
        Assert.Equal("violation:MessageTooBig:1009 || sent-close:1009", ProtocolHarness.Run(frame, Client, ProtocolHarness.Deflate, settings).Render());
        Assert.Equal("binary:" + Convert.ToHexString(zeros) + " || ", ProtocolHarness.Run(frame, Client, ProtocolHarness.Deflate).Render());
    }

    [Fact]
    public void Utf8_is_checked_after_inflation()
    {
        using var c = new DeflateCompressor();
        byte[] compressed = new byte[64];
        int n = c.Compress([0x48, 0xc3, 0x28, 0x48, 0x48, 0x48, 0x48, 0x48], compressed, resetContext: true); // C3 28: invalid
        Assert.True(n > 0);
        byte[] frame = Build(Opcode.Text, compressed[..n], masked: false, rsv: 0x4);
        Assert.Equal("violation:InvalidUtf8:1007 || sent-close:1007", ProtocolHarness.RunAtEverySplit(frame, Client, ProtocolHarness.Deflate).Render());
    }

    [Fact]
    public void Invalid_deflate_data_fails_with_1007() =>
        Assert.Equal("violation:InvalidCompressedData:1007 || sent-close:1007",
            ProtocolHarness.RunAtEverySplit(Build(Opcode.Binary, [0xff, 0xff, 0xff, 0xff], masked: false, rsv: 0x4), Client, ProtocolHarness.Deflate).Render());

    [Fact]
    public void A_prepared_frame_is_compressed_once_per_distinct_window_for_a_fan_out()
    {
        string text = string.Concat(Enumerable.Repeat("compress once, send to many; ", 40));
        PreparedFrame frame = PreparedFrame.CreateText(text);
        int[] windows = [9, 12, 15, 15, 12, 9, 15];
        var sent = new Dictionary<int, string>();
        foreach (int window in windows)
        {
            var parameters = new DeflateParameters(ServerNoContextTakeover: true, ClientNoContextTakeover: true, window, 15);
            var member = new WebSocketProtocol(WebSocketRole.Server, new WebSocketProtocolSettings { CompressionThreshold = 0 }, parameters);
            member.Open(0);
            var output = new ArrayBufferWriter<byte>();
            member.Write(output, OutboundFrame.From(frame));
            Assert.Equal(0xc1, output.WrittenSpan[0]); // FIN, RSV1: compressed
            string bytes = Convert.ToHexString(output.WrittenSpan);
            Assert.Equal(sent.GetValueOrDefault(window, bytes), bytes); // members with the same window get the same bytes
            sent[window] = bytes;

            // The member's peer inflates it with the window it negotiated.
            ProtocolHarness peer = ProtocolHarness.Run(output.WrittenSpan.ToArray(), WebSocketRole.Client, parameters);
            Assert.Equal("text:" + text + " || ", peer.Render());
        }

        Assert.Equal(windows.Distinct().Count(), frame.CompressedVariantCount); // one compression per window, not per member
    }

    // ------------------------------------------------------------------ violations: what came before is delivered first

    [Theory]
    [InlineData("c1 01 61", FrameViolation.ReservedBits)] // RSV1 without a negotiated extension
    [InlineData("83 01 61", FrameViolation.ReservedOpcode)]
    [InlineData("80 01 61", FrameViolation.UnexpectedContinuation)]
    [InlineData("09 00", FrameViolation.FragmentedControlFrame)]
    [InlineData("88 01 03", FrameViolation.ClosePayloadTooShort)]
    [InlineData("88 02 03 ed", FrameViolation.InvalidCloseCode)] // 1005 may not be sent
    [InlineData("81 82 00 00 00 00 c3 28", FrameViolation.MaskedServerFrame)] // masked: a client must not receive it
    public void A_violation_follows_the_message_before_it_and_fails_with_its_code(string bad, FrameViolation violation)
    {
        byte[] input = Concat(Hex("81 02 68 69"), Hex(bad), Hex("81 02 68 69"));
        ushort code = FrameViolations.CloseCode(violation);
        Assert.Equal($"text:hi | violation:{violation}:{code} || sent-close:{code}", ProtocolHarness.RunAtEverySplit(input, Client).Render());
    }

    [Fact]
    public void Every_violation_has_a_distinct_reason_and_a_protocol_close_code()
    {
        FrameViolation[] all = [.. Enum.GetValues<FrameViolation>().Where(v => v != FrameViolation.None)];
        Assert.Equal(all.Length, all.Select(FrameViolations.Reason).Distinct().Count());
        Assert.All(all, v => Assert.Contains(FrameViolations.CloseCode(v), new ushort[] { 1002, 1007, 1009 }));
        Assert.All(all, v => Assert.InRange(System.Text.Encoding.UTF8.GetByteCount(FrameViolations.Reason(v)), 1, 123));
    }

    // ------------------------------------------------------------------ closing handshake

    [Fact]
    public void A_server_answers_a_close_echoing_the_code_and_then_closes_the_transport()
    {
        ProtocolHarness h = ProtocolHarness.RunAtEverySplit(Concat(Text("bye"), Build(Opcode.Close, [0x03, 0xe8, 0x6f, 0x6b]), Text("ignored")), Server);
        Assert.Equal("text:bye | close:1000:ok || sent-close:1000", h.Render());
        Assert.Equal(WebSocketState.CloseReceived, h.Protocol.State);
        Assert.True(h.Protocol.ShouldCloseTransport); // a server closes TCP first (§7.1.1)
        h.Protocol.OnFlushed();
        Assert.Equal(WebSocketState.Closed, h.Protocol.State);
        Assert.Equal(new WebSocketCloseStatus(1000, "ok", true), h.Protocol.Complete());
    }

    [Fact]
    public void A_client_that_completed_the_handshake_waits_for_the_server_to_close_tcp()
    {
        ProtocolHarness h = ProtocolHarness.Run(Hex("88 00"), Client);
        Assert.Equal("close:1005: || sent-close:1005", h.Render());
        Assert.True(h.Protocol.ReceiveStopped);
        Assert.False(h.Protocol.ShouldCloseTransport);
    }

    [Fact]
    public void After_our_close_messages_are_dropped_and_nothing_more_is_written()
    {
        var p = new WebSocketProtocol(WebSocketRole.Server);
        p.Open(0);
        Assert.True(p.StartClose(1001, "going away", 0, out OutboundFrame close));
        Assert.False(p.StartClose(1000, null, 0, out _)); // once
        Assert.Equal(WebSocketState.CloseSent, p.State);
        var output = new ArrayBufferWriter<byte>();
        Assert.True(p.Write(output, close) > 0);
        close.Release();
        OutboundFrame late = OutboundFrame.Rent(Opcode.Text, "late"u8);
        Assert.Equal(0, p.Write(output, late)); // §5.5.1: nothing after a close frame
        late.Release();

        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Concat(Text("dropped"), Build(Opcode.Close, [0x03, 0xe9]))));
        Assert.True(p.TryReceive(ref reader, 10, out ProtocolEvent ev));
        Assert.Equal(ProtocolEventKind.Close, ev.Kind); // the message in between was dropped, as browsers do
        Assert.False(ev.HasReply); // our close already went out
        Assert.Equal(new WebSocketCloseStatus(1001, "", true), p.Complete());
    }

    // ------------------------------------------------------------------ pongs

    [Fact]
    public void Every_ping_gets_its_own_pong_up_to_the_bound_and_the_last_carries_the_newest_payload()
    {
        int pings = WebSocketProtocol.MaxPendingPongs + 4;
        byte[] input = Concat([.. Enumerable.Range(0, pings).Select(i => Build(Opcode.Ping, [(byte)i]))]);
        var p = new WebSocketProtocol(WebSocketRole.Server);
        p.Open(0);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(input));
        var replies = new List<OutboundFrame>();
        while (p.TryReceive(ref reader, 0, out ProtocolEvent ev))
        {
            if (ev.HasReply)
            {
                replies.Add(WebSocketProtocol.ReplyTo(ev));
            }
        }

        Assert.Equal(WebSocketProtocol.MaxPendingPongs, replies.Count);
        var payloads = new List<int>();
        foreach (OutboundFrame reply in replies)
        {
            var output = new ArrayBufferWriter<byte>();
            p.Write(output, reply);
            Assert.Equal(0x8a, output.WrittenSpan[0]);
            payloads.Add(output.WrittenSpan[2]);
        }

        int[] expected = [.. Enumerable.Range(0, WebSocketProtocol.MaxPendingPongs - 1), pings - 1];
        Assert.Equal(expected, payloads);
    }

    // ------------------------------------------------------------------ time: the caller passes "now"

    [Fact]
    public void Keepalive_pings_after_silence_and_fails_without_an_answer()
    {
        var p = new WebSocketProtocol(WebSocketRole.Server, new WebSocketProtocolSettings { KeepAliveInterval = TimeSpan.FromSeconds(30), KeepAliveTimeout = TimeSpan.FromSeconds(20) });
        p.Open(1_000);
        Assert.Equal(TickAction.None, p.OnTick(30_999, out _));
        Assert.Equal(TickAction.SendPing, p.OnTick(31_000, out OutboundFrame ping));
        Assert.Equal(Opcode.Ping, ping.Opcode);
        ping.Release();
        Assert.Equal(TickAction.None, p.OnTick(50_999, out _));
        Assert.Equal(TickAction.Abort, p.OnTick(51_000, out _));
        Assert.Equal(TickAction.None, p.OnTick(52_000, out _)); // aborted once
        WebSocketCloseStatus status = p.Complete();
        Assert.Equal(1006, status.Code);
        Assert.Contains("Keepalive timeout", status.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Any_bytes_count_as_the_answer_to_a_keepalive_ping()
    {
        var p = new WebSocketProtocol(WebSocketRole.Server, new WebSocketProtocolSettings { KeepAliveInterval = TimeSpan.FromSeconds(30), KeepAliveTimeout = TimeSpan.FromSeconds(20) });
        p.Open(0);
        Assert.Equal(TickAction.SendPing, p.OnTick(30_000, out OutboundFrame ping));
        ping.Release();
        p.OnBytesReceived(40_000);
        Assert.Equal(TickAction.None, p.OnTick(60_000, out _));
        Assert.Equal(TickAction.SendPing, p.OnTick(70_000, out ping));
        ping.Release();
    }

    [Fact]
    public void The_closing_handshake_times_out_from_when_it_started()
    {
        var p = new WebSocketProtocol(WebSocketRole.Client, new WebSocketProtocolSettings { CloseTimeout = TimeSpan.FromSeconds(5), KeepAliveInterval = null });
        p.Open(0);
        Assert.True(p.StartClose(1000, null, 10_000, out OutboundFrame close));
        close.Release();
        Assert.Equal(TickAction.None, p.OnTick(14_999, out _));
        Assert.Equal(TickAction.Abort, p.OnTick(15_000, out _));
        Assert.Equal(new WebSocketCloseStatus(1006, "Closing handshake timed out", false), p.Complete());
    }

    // ------------------------------------------------------------------ the fuzz corpus, split

    [Theory]
    [InlineData(WebSocketRole.Server, false)]
    [InlineData(WebSocketRole.Server, true)]
    [InlineData(WebSocketRole.Client, false)]
    [InlineData(WebSocketRole.Client, true)]
    public void Fuzz_corpus_decodes_the_same_at_any_split_and_fails_only_with_protocol_codes(WebSocketRole role, bool deflate)
    {
        var random = new Random(7692 + (int)role * 2 + (deflate ? 1 : 0));
        var settings = new WebSocketProtocolSettings { MaxMessageSize = 64 * 1024 };
        DeflateParameters? compression = deflate ? ProtocolHarness.Deflate : null;
        int n = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_N"), out int k) ? k : 400;
        int messages = 0;
        for (int i = 0; i < n; i++)
        {
            byte[] input = DecoderFuzzUnitTests.Input(random, role, deflate);
            ProtocolHarness whole = ProtocolHarness.Run(input, role, compression, settings);
            Assert.True(whole.Events.Count(e => e.StartsWith("violation:", StringComparison.Ordinal) || e.StartsWith("close:", StringComparison.Ordinal)) <= 1, $"case {i}: events after the end: {whole.Render()}");
            foreach (string e in whole.Events.Where(e => e.StartsWith("violation:", StringComparison.Ordinal)))
            {
                Assert.Contains(e[(e.LastIndexOf(':') + 1)..], new[] { "1002", "1007", "1009" });
            }

            messages += whole.Events.Count(e => e.StartsWith("text:", StringComparison.Ordinal) || e.StartsWith("binary:", StringComparison.Ordinal));
            int[] splits = [.. Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(input.Length + 1)).Order()];
            ProtocolHarness split = ProtocolHarness.Run(input, role, compression, settings, chunks: false, splits);
            Assert.True(whole.Render() == split.Render(), $"case {i}, splits {string.Join(",", splits)}: {split.Render()} != {whole.Render()}");
            if (input.Length <= 200)
            {
                ProtocolHarness.RunAtEverySplit(input, role, compression, settings);
            }
        }

        // The inputs reach past the first header (with deflate, most random RSV1 payloads are not DEFLATE data).
        Assert.True(messages > (deflate ? n / 8 : n / 4), $"{messages} messages in {n} inputs");
    }
}
