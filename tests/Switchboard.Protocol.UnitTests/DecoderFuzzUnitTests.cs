using Switchboard.Tests.Shared;

namespace Switchboard.Protocol.UnitTests;

/// <summary>
/// Arbitrary bytes from a peer: the decoder never throws, only reports a protocol error with one of the close
/// codes RFC 6455 gives for it, and decodes the same way whatever the split into reads. FUZZ_N=100000 in the
/// environment runs longer (1,500 inputs per case by default).
/// </summary>
public class DecoderFuzzUnitTests
{
    private static readonly int[] AllowedCodes = [1002, 1007, 1009];

    /// <summary>Mostly valid frames (so the decoder gets deep into its states), then bytes flipped, cut or inserted.</summary>
    internal static byte[] Input(Random random, WebSocketRole role, bool deflate)
    {
        var bytes = new List<byte>();
        int frames = random.Next(1, 8);
        bool inMessage = false;
        for (int f = 0; f < frames; f++)
        {
            bool odd = random.Next(20) == 0; // now and then a rule is broken on purpose
            bool control = random.Next(4) == 0;
            int opcode = odd ? random.Next(16) : control ? 8 + random.Next(3) : inMessage ? 0 : 1 + random.Next(2);
            int length = control && !odd ? random.Next(126)
                : random.Next(10) switch { 0 => 126 + random.Next(70_000), 1 or 2 => 126 + random.Next(1_000), _ => random.Next(126) };
            byte[] payload = new byte[length];
            if (opcode == 8 && length >= 2 && !odd)
            {
                int[] codes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 3000, 4999, 1005, 999, 5000];
                int code = codes[random.Next(codes.Length)];
                payload[0] = (byte)(code >> 8);
                payload[1] = (byte)code;
            }
            else if (random.Next(3) == 0)
            {
                random.NextBytes(payload);
            }
            else
            {
                ReadOnlySpan<byte> text = "héllo wörld ✓ 🎉 "u8; // text that a cut or a flipped bit can make invalid UTF-8
                for (int at = 0; at < payload.Length; at += text.Length)
                {
                    text[..Math.Min(text.Length, payload.Length - at)].CopyTo(payload.AsSpan(at));
                }
            }

            bool fin = control ? !odd : random.Next(3) != 0;
            if (!control)
            {
                inMessage = !fin;
            }

            int rsv = odd ? random.Next(8) : deflate && !control && opcode != 0 && random.Next(2) == 0 ? 4 : 0;
            bool masked = (role == WebSocketRole.Server) != (random.Next(20) == 0);
            bytes.AddRange(FrameBytes(opcode, payload, fin, rsv, masked, random));
        }

        ByteMutations.Apply(bytes, random, maxMutations: 3);
        return [.. bytes];
    }

    private static IEnumerable<byte> FrameBytes(int opcode, byte[] payload, bool fin, int rsv, bool masked, Random random)
    {
        var header = new List<byte> { (byte)((fin ? 0x80 : 0) | (rsv << 4) | opcode) };
        byte maskBit = masked ? (byte)0x80 : (byte)0;
        if (payload.Length < 126)
        {
            header.Add((byte)(maskBit | payload.Length));
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            header.Add((byte)(maskBit | 126));
            header.Add((byte)(payload.Length >> 8));
            header.Add((byte)payload.Length);
        }
        else
        {
            header.Add((byte)(maskBit | 127));
            for (int i = 7; i >= 0; i--)
            {
                header.Add((byte)((long)payload.Length >> (8 * i)));
            }
        }

        if (!masked)
        {
            return [.. header, .. payload];
        }

        byte[] key = new byte[4];
        random.NextBytes(key);
        byte[] body = [.. payload];
        for (int i = 0; i < body.Length; i++)
        {
            body[i] ^= key[i & 3];
        }

        return [.. header, .. key, .. body];
    }

    [Theory]
    [InlineData(WebSocketRole.Server, (byte)0)]
    [InlineData(WebSocketRole.Server, (byte)0x4)] // permessage-deflate negotiated: RSV1 allowed
    [InlineData(WebSocketRole.Client, (byte)0)]
    public void Arbitrary_input_never_throws_and_fails_only_with_a_protocol_close_code(WebSocketRole role, byte allowedRsv)
    {
        var random = new Random(6455 + (int)role + allowedRsv);
        var options = new FrameDecoderOptions { Role = role, MaxMessageSize = 64 * 1024, AllowedReservedBits = allowedRsv };
        int n = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_N"), out int k) ? k : 1_500;
        int errors = 0, messages = 0;
        for (int i = 0; i < n; i++)
        {
            byte[] input = Input(random, role, allowedRsv != 0);
            Decoded whole = DecoderHarness.Run((byte[])input.Clone(), options);
            foreach (string e in whole.Events.Where(e => e.StartsWith("error:", StringComparison.Ordinal)))
            {
                Assert.Contains(int.Parse(e[6..], System.Globalization.CultureInfo.InvariantCulture), AllowedCodes);
            }

            errors += whole.Events.Count(e => e.StartsWith("error:", StringComparison.Ordinal));
            messages += whole.Events.Count(e => !e.StartsWith("error:", StringComparison.Ordinal));
            Assert.True(whole.Events.Count(e => e.StartsWith("error:", StringComparison.Ordinal)) <= 1, $"case {i}: events after an error: {whole}");
            int[] splits = [.. Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(input.Length + 1)).Order()];
            Decoded split = DecoderHarness.Run((byte[])input.Clone(), options, splits);
            Assert.True(whole.Events.SequenceEqual(split.Events), $"case {i}, splits {string.Join(",", splits)}: {split} != {whole}");
        }

        // The inputs reach past the first header: most decode to messages and control frames before any error.
        Assert.True(messages > n / 2, $"{messages} events, {errors} errors in {n} inputs");
    }
}
