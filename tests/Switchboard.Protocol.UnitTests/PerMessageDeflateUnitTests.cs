using System.Text;
using Switchboard.Protocol.Extensions;

namespace Switchboard.Protocol.UnitTests;

/// <summary>The permessage-deflate codec (RFC 7692 §7.2) and the decoder's RSV1 rules (§6).</summary>
public class PerMessageDeflateUnitTests
{
    private static readonly FrameDecoderOptions Compressing = new() { Role = WebSocketRole.Client, AllowedReservedBits = 0x4 };

    private static string Inflate(DeflateDecompressor d, params byte[][] pieces)
    {
        var output = new List<byte>();
        byte[] room = new byte[7]; // deliberately tiny: exercises DestinationFull
        foreach (byte[] piece in pieces)
        {
            ReadOnlySpan<byte> input = piece;
            while (true)
            {
                InflateStatus s = d.Inflate(input, room, out int consumed, out int written);
                Assert.NotEqual(InflateStatus.InvalidData, s);
                output.AddRange(room[..written]);
                input = input[consumed..];
                if (s == InflateStatus.NeedsInput)
                {
                    break;
                }
            }
        }

        int tail = 0;
        while (true)
        {
            InflateStatus s = d.Finish(room, ref tail, out int written);
            output.AddRange(room[..written]);
            if (s == InflateStatus.NeedsInput)
            {
                break;
            }
        }

        return Encoding.UTF8.GetString([.. output]);
    }

    private static byte[] Compress(DeflateCompressor c, string text, bool reset)
    {
        byte[] message = Encoding.UTF8.GetBytes(text);
        byte[] destination = new byte[message.Length + 64];
        int n = c.Compress(message, destination, reset);
        Assert.True(n >= 0);
        return destination[..n];
    }

    [Fact]
    public void Rfc7692_7_2_3_1_Hello_compressed_is_f2_48_cd_c9_c9_07_00()
    {
        using var c = new DeflateCompressor();
        Assert.Equal(Frames.Hex("f2 48 cd c9 c9 07 00"), Compress(c, "Hello", reset: false));
        using var d = new DeflateDecompressor();
        Assert.Equal("Hello", Inflate(d, Frames.Hex("f2 48 cd c9 c9 07 00")));
    }

    [Fact]
    public void Rfc7692_7_2_3_2_context_takeover_shrinks_the_second_Hello_and_a_reset_does_not()
    {
        using var c = new DeflateCompressor();
        byte[] first = Compress(c, "Hello", reset: false);
        byte[] second = Compress(c, "Hello", reset: false);
        Assert.Equal(Frames.Hex("f2 00 11 00 00"), second); // §7.2.3.2: refers back into the previous message
        using var d = new DeflateDecompressor();
        Assert.Equal("Hello", Inflate(d, first));
        d.EndMessage(resetContext: false);
        Assert.Equal("Hello", Inflate(d, second));

        using var r = new DeflateCompressor();
        Assert.Equal(Compress(r, "Hello", reset: true), Compress(r, "Hello", reset: true)); // no context takeover
    }

    [Theory]
    [InlineData("00 05 00 fa ff 48 65 6c 6c 6f 00")]                   // §7.2.3.3 a stored (uncompressed) block
    [InlineData("f3 48 cd c9 c9 07 00 00")]                            // §7.2.3.4 BFINAL set
    [InlineData("f2 48 05 00 00 00 ff ff ca c9 c9 07 00")]             // §7.2.3.5 two DEFLATE blocks in one message
    public void Rfc7692_examples_inflate_to_Hello(string hex)
    {
        using var d = new DeflateDecompressor();
        byte[] payload = Frames.Hex(hex);
        Assert.Equal("Hello", Inflate(d, payload));
        d.EndMessage(resetContext: false);
        // Fed one byte at a time, too.
        Assert.Equal("Hello", Inflate(d, [.. payload.Select(b => new[] { b })]));
    }

    [Fact]
    public void Corrupt_data_is_reported_not_thrown()
    {
        using var d = new DeflateDecompressor();
        Assert.Equal(InflateStatus.InvalidData, d.Inflate(Frames.Hex("ff ff ff ff"), new byte[64], out _, out _));
    }

    [Fact]
    public void A_bomb_is_inflated_only_as_far_as_the_caller_gives_room()
    {
        // 64 MiB of zeros compresses to about 64 KiB; the caller stops after its limit without ever holding more.
        using var c = new DeflateCompressor(level: 9);
        byte[] zeros = new byte[1 << 20];
        using var stream = new MemoryStream();
        byte[] chunk = new byte[1 << 20];
        for (int i = 0; i < 64; i++)
        {
            int n = c.Compress(zeros, chunk, resetContext: false);
            stream.Write(chunk, 0, n);
            stream.Write(Frames.Hex("00 00 ff ff")); // put back the flush tail between pieces: one continuous message
        }

        byte[] bomb = stream.ToArray();
        Assert.True(bomb.Length < 128 * 1024, $"{bomb.Length}");
        using var d = new DeflateDecompressor();
        byte[] window = new byte[64 * 1024];
        long produced = 0;
        ReadOnlySpan<byte> input = bomb;
        InflateStatus s;
        do
        {
            s = d.Inflate(input, window, out int consumed, out int written);
            input = input[consumed..];
            produced += written;
        }
        while (s == InflateStatus.DestinationFull && produced < 1_000_000);
        Assert.Equal(InflateStatus.DestinationFull, s); // more was pending: the caller's limit stopped it
    }

    [Fact]
    public void Incompressible_data_is_refused_when_it_would_not_shrink()
    {
        byte[] random = new byte[4096];
        new Random(7).NextBytes(random);
        using var c = new DeflateCompressor();
        Assert.Equal(-1, c.Compress(random, new byte[random.Length - 1], resetContext: false));
        // The context was reset, so a later message does not refer to bytes the peer never received.
        byte[] text = Encoding.UTF8.GetBytes(new string('a', 300));
        byte[] dest = new byte[400];
        int n = c.Compress(text, dest, resetContext: false);
        using var fresh = new DeflateDecompressor();
        Assert.Equal(new string('a', 300), Inflate(fresh, dest[..n]));
    }

    [Fact]
    public void Every_window_size_round_trips_large_messages()
    {
        string text = string.Concat(Enumerable.Range(0, 5000).Select(i => $"message {i % 97} from someone; "));
        for (int bits = 9; bits <= 15; bits++)
        {
            using var c = new DeflateCompressor(level: 6, windowBits: bits);
            using var d = new DeflateDecompressor();
            for (int round = 0; round < 3; round++)
            {
                byte[] z = Compress(c, text, reset: false);
                Assert.True(z.Length < text.Length / 4);
                Assert.Equal(text, Inflate(d, z.Chunk(1000).ToArray()));
                d.EndMessage(resetContext: false);
            }
        }
    }

    [Fact]
    public void Pool_reuses_state_and_pools_are_not_shared()
    {
        var pool = new DeflatePool();
        DeflateCompressor c = pool.RentCompressor(3, 12);
        DeflateDecompressor d = pool.RentDecompressor();
        pool.Return(c);
        pool.Return(d);
        Assert.Same(c, pool.RentCompressor(3, 12)); // the same native state, reset, comes back
        pool.Return(c);
        Assert.NotSame(c, new DeflatePool().RentCompressor(3, 12)); // pools are not shared
    }

    // ---- the decoder's side: RSV1 (RFC 7692 §6)

    [Fact]
    public void Decoder_passes_a_compressed_message_through_as_deflate_data()
    {
        // §7.2.3.1, one frame and fragmented (RSV1 on the first frame only).
        Assert.Equal(["deflated-text:F248CDC9C90700"], DecoderHarness.RunAtEverySplit(Frames.Hex("c1 07 f2 48 cd c9 c9 07 00"), Compressing).Events);
        Assert.Equal(["deflated-text:F248CDC9C90700"], DecoderHarness.RunAtEverySplit(Frames.Hex("41 03 f2 48 cd 80 04 c9 c9 07 00"), Compressing).Events);
    }

    [Fact]
    public void Decoder_skips_utf8_checks_on_compressed_bytes_but_not_on_plain_text()
    {
        // Compressed bytes are not UTF-8; an uncompressed message on the same connection still is checked.
        Assert.Equal(["deflated-text:FFFE", "error:1007"], DecoderHarness.Run(Frames.Hex("c1 02 ff fe 81 02 ff fe"), Compressing).Events);
    }

    [Theory]
    [InlineData("c1 07 f2 48 cd c9 c9 07 00", new byte[0])]   // RSV1 without the extension
    [InlineData("41 03 f2 48 cd c0 04 c9 c9 07 00", new byte[] { 0x4 })] // RSV1 on a continuation frame
    [InlineData("c9 00", new byte[] { 0x4 })]                 // RSV1 on a ping
    [InlineData("a1 00", new byte[] { 0x4 })]                 // RSV2
    [InlineData("91 00", new byte[] { 0x4 })]                 // RSV3
    public void Misplaced_reserved_bits_fail_with_1002(string hex, byte[] allowed)
    {
        var options = new FrameDecoderOptions { Role = WebSocketRole.Client, AllowedReservedBits = allowed.Length == 0 ? (byte)0 : allowed[0] };
        Assert.Equal("error:1002", DecoderHarness.Run(Frames.Hex(hex), options).Events.Last());
    }

    [Fact]
    public void Compressed_wire_size_may_exceed_the_limit_only_by_deflate_overhead()
    {
        var small = new FrameDecoderOptions { Role = WebSocketRole.Client, AllowedReservedBits = 0x4, MaxMessageSize = 1024 };
        // 1024 + a few bytes of stored-block overhead is accepted on the wire (the inflated size is checked later)...
        Assert.StartsWith("deflated-binary:", DecoderHarness.Run(Frames.Concat(Frames.Hex("c2 7e 04 10"), new byte[1040]), small).Events[0]);
        // ...but not much more, and an uncompressed message gets no slack.
        Assert.Equal(["error:1009"], DecoderHarness.Run(Frames.Concat(Frames.Hex("c2 7e 08 00"), new byte[2048]), small).Events);
        Assert.Equal(["error:1009"], DecoderHarness.Run(Frames.Concat(Frames.Hex("82 7e 04 01"), new byte[1025]), small).Events);
    }
}

/// <summary>
/// Counts the process's live native streams, so it runs alone: codecs other tests create and free meanwhile would
/// move the count it measures.
/// </summary>
[Collection(NativeStreamCount.Name)]
public class DeflateSafeHandleUnitTests
{
    [Fact]
    public void Native_state_of_a_codec_dropped_without_dispose_is_released_by_its_safe_handle()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect(); // codecs earlier tests dropped are released now, not while this one counts
            GC.WaitForPendingFinalizers();
        }

        long before = DeflateStreams.Live;
        Assert.Equal(before + 200, CreateAndDrop());
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        Assert.True(DeflateStreams.Live <= before, $"{DeflateStreams.Live - before} native streams still live"); // earlier tests' dropped codecs may go too
    }

    /// <summary>Creates 200 codecs and drops them undisposed; returns the live count while they were held. Not inlined: no stack slot of the caller keeps one.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static long CreateAndDrop()
    {
        var held = new List<object>();
        for (int i = 0; i < 100; i++)
        {
            held.Add(new DeflateCompressor(1, 9, memLevel: 1));
            held.Add(new DeflateDecompressor());
        }

        return DeflateStreams.Live;
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NativeStreamCount
{
    public const string Name = "native stream count";
}
