using System.Buffers;
using System.Text;
using Switchboard.Protocol.Extensions;

namespace Switchboard.Protocol.UnitTests;

/// <summary>
/// Feeds input to a <see cref="WebSocketProtocol"/> the way the I/O layer does (unconsumed bytes are kept and more
/// appended, a violation is followed by <see cref="WebSocketProtocol.Fail"/>), writes every reply it asks for, and
/// renders events and written frames as strings so runs can be compared across split points. No pipes, no sockets.
/// </summary>
internal sealed class ProtocolHarness
{
    public static readonly DeflateParameters Deflate = new(false, false, 15, 15);

    private ProtocolHarness(WebSocketRole role, WebSocketProtocolSettings? settings, DeflateParameters? compression, bool chunks)
    {
        Protocol = new WebSocketProtocol(role, settings, compression, new FixedRandom());
        Protocol.DeliverChunks = chunks;
        Protocol.Open(0);
    }

    public WebSocketProtocol Protocol { get; }

    public List<string> Events { get; } = [];

    /// <summary>What the protocol wrote for the replies it asked for, as the peer would decode it.</summary>
    public List<string> Written { get; } = [];

    private readonly List<byte> _chunks = [];

    public static ProtocolHarness Run(byte[] input, WebSocketRole role, DeflateParameters? compression = null, WebSocketProtocolSettings? settings = null, bool chunks = false, params int[] splits)
    {
        var h = new ProtocolHarness(role, settings, compression, chunks);
        var pending = new List<byte>();
        int prev = 0;
        foreach (int cut in splits.Append(input.Length))
        {
            pending.AddRange(input[prev..cut]);
            prev = cut;
            byte[] buffer = [.. pending];
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(buffer));
            h.Feed(ref reader);
            pending = [.. buffer[(int)reader.Consumed..]];
        }

        return h;
    }

    /// <summary>Runs once whole, then split at every point, as two segments at every point, and byte by byte: all must agree.</summary>
    public static ProtocolHarness RunAtEverySplit(byte[] input, WebSocketRole role, DeflateParameters? compression = null, WebSocketProtocolSettings? settings = null, bool chunks = false)
    {
        ProtocolHarness whole = Run(input, role, compression, settings, chunks);
        for (int k = 0; k <= input.Length; k++)
        {
            ProtocolHarness split = Run(input, role, compression, settings, chunks, k);
            Assert.True(whole.Render() == split.Render(), $"split at {k}: {split.Render()} != {whole.Render()}");
            var segmented = new ProtocolHarness(role, settings, compression, chunks);
            var reader = new SequenceReader<byte>(TestSequence.Create(input[..k], input[k..]));
            segmented.Feed(ref reader);
            Assert.True(whole.Render() == segmented.Render(), $"segments at {k}: {segmented.Render()} != {whole.Render()}");
        }

        ProtocolHarness drip = Run(input, role, compression, settings, chunks, [.. Enumerable.Range(1, Math.Max(0, input.Length - 1))]);
        Assert.True(whole.Render() == drip.Render(), $"byte-by-byte: {drip.Render()} != {whole.Render()}");
        return whole;
    }

    public string Render() => string.Join(" | ", Events) + " || " + string.Join(" | ", Written);

    private void Feed(ref SequenceReader<byte> reader)
    {
        while (Protocol.TryReceive(ref reader, 0, out ProtocolEvent ev))
        {
            switch (ev.Kind)
            {
                case ProtocolEventKind.Message:
                    Events.Add(Describe(ev.MessageType, ev.Payload.ToArray()));
                    break;
                case ProtocolEventKind.MessageChunk:
                    _chunks.AddRange(ev.Payload.ToArray());
                    if (ev.EndOfMessage)
                    {
                        Events.Add(Describe(ev.MessageType, [.. _chunks]));
                        _chunks.Clear();
                    }

                    break;
                case ProtocolEventKind.Ping:
                    Events.Add("ping:" + Convert.ToHexString(ev.Payload.ToArray()));
                    break;
                case ProtocolEventKind.Pong:
                    Events.Add("pong:" + Convert.ToHexString(ev.Payload.ToArray()));
                    break;
                case ProtocolEventKind.Close:
                    Events.Add($"close:{ev.CloseCode}:{ev.Reason}");
                    break;
                case ProtocolEventKind.Violation:
                    Events.Add($"violation:{ev.Violation}:{ev.CloseCode}");
                    if (Protocol.Fail(new WebSocketError(ev.CloseCode, ev.Reason!), 0, out OutboundFrame close))
                    {
                        WriteReply(close);
                    }

                    break;
            }

            if (ev.HasReply)
            {
                WriteReply(WebSocketProtocol.ReplyTo(ev));
            }
        }
    }

    public void WriteReply(OutboundFrame frame)
    {
        var output = new ArrayBufferWriter<byte>();
        int n = Protocol.Write(output, frame);
        frame.Release();
        Assert.Equal(n, output.WrittenCount);
        Written.Add(n == 0 ? "dropped" : DecodeOwn(output.WrittenSpan.ToArray()));
    }

    /// <summary>Decodes what this side wrote, as the peer would.</summary>
    private string DecodeOwn(byte[] bytes)
    {
        WebSocketRole peer = Protocol.Role == WebSocketRole.Server ? WebSocketRole.Client : WebSocketRole.Server;
        var decoder = new FrameDecoder(new FrameDecoderOptions { Role = peer, AllowedReservedBits = 0x4 });
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.Equal(DecodeStatus.Event, decoder.Decode(ref reader, out FrameEvent ev));
        Assert.Equal(0, reader.Remaining);
        return ev.Kind switch
        {
            FrameEventKind.Close => $"sent-close:{ev.CloseCode}",
            FrameEventKind.Pong => "sent-pong:" + Convert.ToHexString(ev.Payload.ToArray()),
            FrameEventKind.Ping => "sent-ping:" + Convert.ToHexString(ev.Payload.ToArray()),
            _ => $"sent-{ev.Kind}:{ev.MessageType}:{Convert.ToHexString(ev.Payload.ToArray())}",
        };
    }

    private static string Describe(MessageType type, byte[] data) =>
        type == MessageType.Text ? "text:" + Encoding.UTF8.GetString(data) : "binary:" + Convert.ToHexString(data);

    private sealed class FixedRandom : Handshake.IWebSocketRandom
    {
        public void Fill(Span<byte> destination) => destination.Fill(0x5a);
    }
}
