using System.Buffers;
using System.Text;

namespace Switchboard.Protocol.UnitTests;

/// <summary>What a decoder produced for a whole input, in order.</summary>
internal sealed record Decoded(List<string> Events)
{
    public override string ToString() => string.Join(" | ", Events);
}

/// <summary>
/// Feeds input to a <see cref="FrameDecoder"/> the way the I/O layer does (unconsumed bytes are kept and
/// more appended), and renders events as strings so runs can be compared across split points.
/// </summary>
internal static class DecoderHarness
{
    public static Decoded Run(byte[] input, FrameDecoderOptions options, params int[] splits)
    {
        var decoder = new FrameDecoder(options);
        var events = new List<string>();
        var pending = new List<byte>();
        var message = new List<byte>();
        int prev = 0;
        foreach (int cut in splits.Append(input.Length))
        {
            pending.AddRange(input[prev..cut]);
            prev = cut;
            byte[] buffer = pending.ToArray();
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(buffer));
            while (!decoder.IsFaulted)
            {
                if (decoder.Decode(ref reader, out FrameEvent ev) == DecodeStatus.NeedMoreData)
                {
                    break;
                }

                Render(ev, events, message);
            }

            pending = [.. buffer[(int)reader.Consumed..]];
            if (decoder.IsFaulted)
            {
                break;
            }
        }

        return new Decoded(events);
    }

    /// <summary>Runs once whole, then once for every single split point and every multi-segment layout; all must agree.</summary>
    public static Decoded RunAtEverySplit(byte[] input, FrameDecoderOptions options)
    {
        Decoded whole = Run((byte[])input.Clone(), options);
        for (int k = 0; k <= input.Length; k++)
        {
            Decoded split = Run((byte[])input.Clone(), options, k);
            Assert.True(whole.Events.SequenceEqual(split.Events), $"split at {k}: {split} != {whole}");
            Decoded segmented = RunSegmented((byte[])input.Clone(), options, k);
            Assert.True(whole.Events.SequenceEqual(segmented.Events), $"segments at {k}: {segmented} != {whole}");
        }

        // Byte by byte: the most fragmented delivery possible.
        Decoded drip = Run((byte[])input.Clone(), options, [.. Enumerable.Range(1, Math.Max(0, input.Length - 1))]);
        Assert.True(whole.Events.SequenceEqual(drip.Events), $"byte-by-byte: {drip} != {whole}");
        return whole;
    }

    /// <summary>All input at once, but as a two-segment sequence split at <paramref name="k"/>.</summary>
    public static Decoded RunSegmented(byte[] input, FrameDecoderOptions options, int k)
    {
        var decoder = new FrameDecoder(options);
        var events = new List<string>();
        var message = new List<byte>();
        var reader = new SequenceReader<byte>(TestSequence.Create(input[..k], input[k..]));
        while (!decoder.IsFaulted && decoder.Decode(ref reader, out FrameEvent ev) == DecodeStatus.Event)
        {
            Render(ev, events, message);
        }

        return new Decoded(events);
    }

    private static void Render(FrameEvent ev, List<string> events, List<byte> message)
    {
        switch (ev.Kind)
        {
            case FrameEventKind.Data:
                message.AddRange(ev.Payload.ToArray());
                if (ev.EndOfMessage)
                {
                    byte[] m = [.. message];
                    message.Clear();
                    events.Add(ev.Compressed ? $"deflated-{ev.MessageType.ToString().ToLowerInvariant()}:{Convert.ToHexString(m)}"
                        : ev.MessageType == MessageType.Text ? "text:" + Encoding.UTF8.GetString(m) : "binary:" + Convert.ToHexString(m));
                }

                break;
            case FrameEventKind.Ping:
                events.Add("ping:" + Convert.ToHexString(ev.Payload.ToArray()));
                break;
            case FrameEventKind.Pong:
                events.Add("pong:" + Convert.ToHexString(ev.Payload.ToArray()));
                break;
            case FrameEventKind.Close:
                events.Add($"close:{ev.CloseCode}:{ev.Reason}");
                break;
            case FrameEventKind.ProtocolError:
                events.Add($"error:{ev.CloseCode}");
                break;
        }
    }
}

internal sealed class TestSegment : ReadOnlySequenceSegment<byte>
{
    public TestSegment(ReadOnlyMemory<byte> memory) => Memory = memory;

    public TestSegment Append(ReadOnlyMemory<byte> memory)
    {
        var next = new TestSegment(memory) { RunningIndex = RunningIndex + Memory.Length };
        Next = next;
        return next;
    }
}

internal static class TestSequence
{
    public static ReadOnlySequence<byte> Create(params byte[][] parts)
    {
        var first = new TestSegment(parts[0]);
        TestSegment last = first;
        foreach (byte[] p in parts.Skip(1))
        {
            last = last.Append(p);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}

/// <summary>Builds frames for tests.</summary>
internal static class Frames
{
    public static readonly uint Key = 0x3d21fa37; // wire bytes 37 fa 21 3d (RFC 6455 §5.7)

    public static byte[] Build(Opcode opcode, byte[] payload, bool fin = true, bool masked = true, byte rsv = 0)
    {
        var w = new ArrayBufferWriter<byte>();
        FrameEncoder.WriteFrame(w, fin, rsv, opcode, payload, masked, Key);
        return w.WrittenSpan.ToArray();
    }

    public static byte[] Text(string s, bool fin = true, bool masked = true) => Build(Opcode.Text, Encoding.UTF8.GetBytes(s), fin, masked);

    public static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));
}
