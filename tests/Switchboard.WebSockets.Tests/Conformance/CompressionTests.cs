using System.IO.Compression;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Switchboard.Server;

namespace Switchboard.WebSockets.Tests.Conformance;

/// <summary>
/// permessage-deflate (RFC 7692) on the wire against our server's /echo: negotiation, compressed frames both ways,
/// fragmentation, context takeover, and the failures (1002 for misplaced RSV1, 1007 for corrupt data, 1009 for a
/// message whose inflated size passes the limit). The test side compresses and inflates with .NET's DeflateStream,
/// not with the server's codec.
/// </summary>
public class CompressionTests
{
    private const string Offer = "permessage-deflate; client_max_window_bits";

    /// <summary>Raw DEFLATE of <paramref name="data"/>, sync-flushed, without the 00 00 FF FF tail (§7.2.1).</summary>
    public static byte[] Deflate(byte[] data)
    {
        using var ms = new MemoryStream();
        using var z = new DeflateStream(ms, CompressionLevel.Optimal, leaveOpen: true);
        z.Write(data);
        z.Flush(); // Z_SYNC_FLUSH
        byte[] all = ms.ToArray();
        Assert.Equal([0x00, 0x00, 0xFF, 0xFF], all[^4..]);
        return all[..^4];
    }

    /// <summary>Inflates one message's payload (appending the tail, §7.2.2).</summary>
    public static byte[] Inflate(byte[] payload)
    {
        using var z = new DeflateStream(new MemoryStream([.. payload, 0x00, 0x00, 0xFF, 0xFF]), CompressionMode.Decompress);
        using var output = new MemoryStream();
        z.CopyTo(output);
        return output.ToArray();
    }

    /// <summary>A chat-like JSON line (compressible the way real chat is).</summary>
    internal static string Chat(int i) => $"{{\"type\":\"message\",\"room\":\"general\",\"offset\":{i},\"from\":\"alice\",\"text\":\"hello number {i}, how are you all doing today?\"}}";

    private static async Task<RawWebSocket> ConnectDeflateAsync(int port, string offer = Offer)
    {
        (RawWebSocket ws, string head) = await RawWebSocket.ConnectWithExtensionsAsync(port, offer);
        Assert.Contains("Sec-WebSocket-Extensions: permessage-deflate", head);
        return ws;
    }

    [Theory]
    [InlineData(Offer, "permessage-deflate; server_no_context_takeover; client_no_context_takeover")]
    [InlineData("permessage-deflate; server_max_window_bits=10; client_max_window_bits=12", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12")]
    [InlineData("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover")]
    public async Task Server_answers_the_first_acceptable_offer(string offer, string answer)
    {
        var server = await TestServer.Shared;
        (RawWebSocket ws, string head) = await RawWebSocket.ConnectWithExtensionsAsync(server.Port, offer);
        await using (ws)
        {
            Assert.Contains("Sec-WebSocket-Extensions: " + answer + "\r\n", head);
        }
    }

    [Theory]
    [InlineData("permessage-deflate; server_max_window_bits=8")]
    [InlineData("permessage-deflate; no_such_parameter")]
    [InlineData("x-webkit-deflate-frame")]
    public async Task Unacceptable_offers_are_declined_and_the_connection_runs_uncompressed(string offer)
    {
        var server = await TestServer.Shared;
        (RawWebSocket ws, string head) = await RawWebSocket.ConnectWithExtensionsAsync(server.Port, offer);
        await using (ws)
        {
            Assert.DoesNotContain("Sec-WebSocket-Extensions", head);
            await ws.SendAsync(RawWebSocket.Frame(1, Deflate("x"u8.ToArray()), rsv: 4));
            Assert.Equal(1002, await ws.ExpectCloseAsync()); // RSV1 means nothing without the extension
        }
    }

    [Fact]
    public async Task Compressed_messages_echo_compressed_with_RSV1_and_small_ones_plain()
    {
        var server = await TestServer.Shared;
        await using RawWebSocket ws = await ConnectDeflateAsync(server.Port);
        // RFC 7692 §7.2.3.1 "Hello": below the compression threshold, echoed uncompressed.
        await ws.SendAsync(RawWebSocket.Frame(1, Convert.FromHexString("F248CDC9C90700"), rsv: 4));
        RawFrame? hello = await ws.ReadFrameAsync();
        Assert.Equal((0, "Hello"), (hello!.Rsv, hello.Text));

        for (int i = 0; i < 3; i++)
        {
            string text = string.Concat(Enumerable.Range(0, 20).Select(Chat));
            await ws.SendAsync(RawWebSocket.Frame(1, Deflate(Encoding.UTF8.GetBytes(text)), rsv: 4));
            RawFrame? echo = await ws.ReadFrameAsync();
            Assert.Equal((4, 1, true), (echo!.Rsv, echo.Opcode, echo.Fin));
            Assert.True(echo.Payload.Length < text.Length / 3, $"{echo.Payload.Length} bytes for {text.Length}");
            Assert.Equal(text, Encoding.UTF8.GetString(Inflate(echo.Payload)));
        }

        // Binary too; incompressible data is sent as is.
        byte[] noise = new byte[3000];
        new Random(1).NextBytes(noise);
        await ws.SendAsync(RawWebSocket.Frame(2, Deflate(noise), rsv: 4));
        RawFrame? raw = await ws.ReadFrameAsync();
        Assert.Equal((0, 2), (raw!.Rsv, raw.Opcode));
        Assert.Equal(noise, raw.Payload);
    }

    [Fact]
    public async Task Fragmented_compressed_message_has_RSV1_on_the_first_frame_only()
    {
        var server = await TestServer.Shared;
        await using RawWebSocket ws = await ConnectDeflateAsync(server.Port);
        string text = string.Concat(Enumerable.Range(0, 50).Select(Chat));
        byte[] z = Deflate(Encoding.UTF8.GetBytes(text));
        int third = z.Length / 3;
        await ws.SendAsync([
            .. RawWebSocket.Frame(1, z[..third], fin: false, rsv: 4),
            .. RawWebSocket.Frame(9, "in between"u8.ToArray()), // a control frame between fragments is fine
            .. RawWebSocket.Frame(0, z[third..(2 * third)], fin: false),
            .. RawWebSocket.Frame(0, z[(2 * third)..]),
        ]);
        RawFrame? pong = await ws.ReadFrameAsync();
        Assert.Equal((10, "in between"), (pong!.Opcode, pong.Text));
        RawFrame? echo = await ws.ReadFrameAsync();
        Assert.Equal(4, echo!.Rsv);
        Assert.Equal(text, Encoding.UTF8.GetString(Inflate(echo.Payload)));

        // RSV1 on a continuation frame is a protocol error (§6.1).
        await ws.SendAsync([.. RawWebSocket.Frame(1, z[..third], fin: false, rsv: 4), .. RawWebSocket.Frame(0, z[third..], rsv: 4)]);
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Uncompressed_messages_still_work_on_a_compressing_connection()
    {
        var server = await TestServer.Shared;
        await using RawWebSocket ws = await ConnectDeflateAsync(server.Port);
        await ws.SendAsync(RawWebSocket.TextFrame("plain"));
        RawFrame? echo = await ws.ReadFrameAsync();
        Assert.Equal((0, "plain"), (echo!.Rsv, echo.Text));
    }

    [Fact]
    public async Task Corrupt_compressed_data_fails_with_1007()
    {
        var server = await TestServer.Shared;
        await using RawWebSocket ws = await ConnectDeflateAsync(server.Port);
        await ws.SendAsync(RawWebSocket.Frame(1, [0xFF, 0xFF, 0xFF, 0xFF, 0x00], rsv: 4));
        Assert.Equal(1007, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Invalid_utf8_inside_compressed_text_fails_with_1007()
    {
        var server = await TestServer.Shared;
        await using RawWebSocket ws = await ConnectDeflateAsync(server.Port);
        await ws.SendAsync(RawWebSocket.Frame(1, Deflate([.. "valid so far "u8, 0xED, 0xA0, 0x80]), rsv: 4));
        Assert.Equal(1007, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task A_small_message_that_inflates_past_the_limit_fails_with_1009_before_it_has_all_arrived()
    {
        // The server's limit is 20 MiB. 64 MiB of zeros deflates to about 64 KiB; the server must refuse while
        // inflating, after roughly a third of it — long before the rest is sent.
        var server = await TestServer.Shared;
        await using RawWebSocket ws = await ConnectDeflateAsync(server.Port);
        byte[] bomb = Deflate(new byte[64 << 20]);
        Assert.True(bomb.Length < 128 * 1024, $"{bomb.Length}");
        byte[] frame = RawWebSocket.Frame(2, bomb, rsv: 4);
        await ws.SendAsync(frame[..(frame.Length / 2)]); // half is already past the limit once inflated
        Assert.Equal(1009, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Disabled_compression_declines_every_offer_and_context_takeover_can_be_enabled()
    {
        WebApplication off = SwitchboardServer.Build(new SwitchboardServerOptions { Urls = "http://127.0.0.1:0", Store = "memory", Compression = false }, l => l.SetMinimumLevel(LogLevel.Warning));
        WebApplication takeover = SwitchboardServer.Build(new SwitchboardServerOptions { Urls = "http://127.0.0.1:0", Store = "memory", CompressionContextTakeover = true, CompressionLevel = 9 }, l => l.SetMinimumLevel(LogLevel.Warning));
        await off.StartAsync();
        await takeover.StartAsync();
        try
        {
            int offPort = new Uri(SwitchboardServer.GetAddresses(off)[0]).Port;
            (RawWebSocket plain, string head) = await RawWebSocket.ConnectWithExtensionsAsync(offPort, Offer);
            await using (plain)
            {
                Assert.DoesNotContain("Sec-WebSocket-Extensions", head);
            }

            // With context takeover, the server compresses each message against the ones before it: the same message
            // sent again comes back far smaller, and only a decompressor that kept its window can read it.
            int port = new Uri(SwitchboardServer.GetAddresses(takeover)[0]).Port;
            (RawWebSocket ws, string answer) = await RawWebSocket.ConnectWithExtensionsAsync(port, Offer);
            await using (ws)
            {
                Assert.Contains("Sec-WebSocket-Extensions: permessage-deflate\r\n", answer);
                string text = string.Concat(Enumerable.Range(0, 5).Select(i => Guid.NewGuid().ToString()));
                var inflater = new ContextInflater();
                var sizes = new List<int>();
                for (int i = 0; i < 3; i++)
                {
                    await ws.SendAsync(RawWebSocket.TextFrame(text));
                    RawFrame? echo = await ws.ReadFrameAsync();
                    Assert.Equal(4, echo!.Rsv);
                    sizes.Add(echo.Payload.Length);
                    Assert.Equal(text, inflater.Inflate(echo.Payload));
                }

                Assert.True(sizes[1] < sizes[0] / 4, string.Join(",", sizes));
            }
        }
        finally
        {
            await off.StopAsync();
            await takeover.StopAsync();
        }
    }

    /// <summary>A receiver that keeps its LZ77 window across messages (context takeover), built on the server's codec.</summary>
    private sealed class ContextInflater
    {
        private readonly Protocol.Extensions.DeflateDecompressor _d = new();

        public string Inflate(byte[] payload)
        {
            byte[] room = new byte[1 << 20];
            Assert.Equal(Protocol.Extensions.InflateStatus.NeedsInput, _d.Inflate(payload, room, out _, out int n));
            int tail = 0;
            Assert.Equal(Protocol.Extensions.InflateStatus.NeedsInput, _d.Finish(room.AsSpan(n), ref tail, out int m));
            _d.EndMessage(resetContext: false);
            return Encoding.UTF8.GetString(room, 0, n + m);
        }
    }
}
