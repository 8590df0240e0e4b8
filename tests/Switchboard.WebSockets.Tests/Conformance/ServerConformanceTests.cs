using Switchboard.Protocol;
using System.Text;

namespace Switchboard.WebSockets.Tests.Conformance;

// Our server (/echo) against raw bytes over a real socket, organized by the sections of the well-known
// conformance suites. Every test asserts the exact echo, close code or HTTP response on the wire.

public class FramingTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(125)]
    [InlineData(126)]
    [InlineData(65535)]
    [InlineData(65536)]
    [InlineData(1 << 20)]
    public async Task Text_and_binary_of_every_length_encoding_echo(int length)
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        string text = new('*', length);
        byte[] binary = [.. Enumerable.Range(0, length).Select(i => (byte)(i * 31))];
        await ws.SendAsync(RawWebSocket.TextFrame(text));
        await ws.SendFrameAsync(2, binary);
        RawFrame? t = await ws.ReadFrameAsync();
        RawFrame? b = await ws.ReadFrameAsync();
        Assert.Equal((1, true, text), (t!.Opcode, t.Fin, t.Text));
        Assert.Equal(2, b!.Opcode);
        Assert.Equal(binary, b.Payload);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(997)]
    public async Task Frames_chopped_into_pieces_echo(int chop)
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        string text = string.Concat(Enumerable.Repeat("Hello, κόσμε 𝄞 ", 200));
        await ws.SendChoppedAsync(RawWebSocket.TextFrame(text), chop);
        Assert.Equal(text, (await ws.ReadFrameAsync())!.Text);
    }

    [Fact]
    public async Task Many_frames_in_one_write_echo_in_order()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync([.. Enumerable.Range(0, 100).SelectMany(i => RawWebSocket.TextFrame("m" + i))]);
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal("m" + i, (await ws.ReadFrameAsync())!.Text);
        }
    }

    [Fact]
    public async Task Unmasked_client_frame_fails_with_1002()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync(RawWebSocket.Frame(1, "x"u8.ToArray(), masked: false));
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }
}

public class PingPongTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    [InlineData(125)]
    public async Task Ping_gets_a_pong_with_the_same_payload(int length)
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        byte[] payload = [.. Enumerable.Range(0, length).Select(i => (byte)(255 - i))];
        await ws.SendFrameAsync(9, payload);
        RawFrame? pong = await ws.ReadFrameAsync();
        Assert.Equal(10, pong!.Opcode);
        Assert.Equal(payload, pong.Payload);
    }

    [Fact]
    public async Task Ping_over_125_bytes_fails_with_1002()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendFrameAsync(9, new byte[126]);
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Unsolicited_pong_is_ignored()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendFrameAsync(10, "unsolicited"u8.ToArray());
        await ws.SendAsync(RawWebSocket.TextFrame("after"));
        RawFrame? f = await ws.ReadFrameAsync();
        Assert.Equal((1, "after"), (f!.Opcode, f.Text));
    }

    [Theory]
    [InlineData(false)] // ten pings in one write
    [InlineData(true)]  // the same bytes, one octet per write
    public async Task Ten_pings_in_a_row_get_ten_pongs_each_with_its_payload_in_order(bool chopped)
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        byte[] pings = [.. Enumerable.Range(0, 10).SelectMany(i => RawWebSocket.Frame(9, System.Text.Encoding.ASCII.GetBytes($"payload-{i}")))];
        if (chopped)
        {
            foreach (byte b in pings)
            {
                await ws.SendAsync([b]);
            }
        }
        else
        {
            await ws.SendAsync(pings);
        }

        for (int i = 0; i < 10; i++)
        {
            RawFrame? pong = await ws.ReadFrameAsync();
            Assert.Equal((10, $"payload-{i}"), (pong!.Opcode, System.Text.Encoding.ASCII.GetString(pong.Payload)));
        }

        await ws.SendAsync(RawWebSocket.TextFrame("after"));
        Assert.Equal("after", (await ws.ReadFrameAsync())!.Text); // and nothing else came in between
    }

    [Fact]
    public async Task A_ping_flood_is_answered_in_order_and_the_last_pong_carries_the_last_ping()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        const int count = 2000;
        await ws.SendAsync([.. Enumerable.Range(0, count).SelectMany(i => RawWebSocket.Frame(9, BitConverter.GetBytes(i)))]);
        await ws.SendAsync(RawWebSocket.TextFrame("end"));
        int previous = -1, pongs = 0;
        while (true)
        {
            RawFrame? f = await ws.ReadFrameAsync();
            if (f!.Opcode == 1)
            {
                break;
            }

            int n = BitConverter.ToInt32(f.Payload);
            Assert.True(n > previous, $"pong {n} after {previous}");
            previous = n;
            pongs++;
        }

        Assert.Equal(count - 1, previous); // however many were folded together, the newest ping was answered
        Assert.InRange(pongs, 1, count);
    }

    [Fact]
    public async Task Ten_pings_read_one_by_one_get_ten_pongs_in_order()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        for (int i = 0; i < 10; i++)
        {
            await ws.SendFrameAsync(9, [(byte)i]);
            RawFrame? pong = await ws.ReadFrameAsync();
            Assert.Equal((10, (byte)i), (pong!.Opcode, pong.Payload[0]));
        }
    }
}

public class ReservedBitsTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(4, 1)]
    [InlineData(7, 2)]
    [InlineData(4, 9)]
    public async Task Reserved_bits_fail_with_1002_after_the_valid_message_before_them_is_echoed(int rsv, int opcode)
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync([.. RawWebSocket.TextFrame("before"), .. RawWebSocket.Frame(opcode, "x"u8.ToArray(), rsv: rsv)]);
        Assert.Equal("before", (await ws.ReadFrameAsync())!.Text);
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }
}

public class OpcodeTests
{
    [Theory]
    [InlineData(3)] [InlineData(4)] [InlineData(5)] [InlineData(6)] [InlineData(7)]
    [InlineData(11)] [InlineData(12)] [InlineData(13)] [InlineData(14)] [InlineData(15)]
    public async Task Reserved_opcodes_fail_with_1002_and_earlier_messages_are_echoed_first(int opcode)
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync([.. RawWebSocket.TextFrame("first"), .. RawWebSocket.Frame(opcode, [1, 2]), .. RawWebSocket.TextFrame("never")]);
        Assert.Equal("first", (await ws.ReadFrameAsync())!.Text);
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }
}

public class FragmentationTests
{
    [Fact]
    public async Task Fragmented_text_with_interleaved_ping_echoes_whole_and_pong_comes_first()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync([
            .. RawWebSocket.TextFrame("frag", fin: false),
            .. RawWebSocket.Frame(9, "p"u8.ToArray()),
            .. RawWebSocket.Frame(0, "ment"u8.ToArray(), fin: false),
            .. RawWebSocket.Frame(0, "ed"u8.ToArray(), fin: true)]);
        RawFrame? pong = await ws.ReadFrameAsync();
        Assert.Equal(10, pong!.Opcode);
        Assert.Equal("fragmented", (await ws.ReadFrameAsync())!.Text);
    }

    [Fact]
    public async Task Fragmented_binary_with_empty_fragments_echoes_whole()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync([
            .. RawWebSocket.Frame(2, [], fin: false),
            .. RawWebSocket.Frame(0, [1, 2, 3], fin: false),
            .. RawWebSocket.Frame(0, [], fin: false),
            .. RawWebSocket.Frame(0, [4], fin: true)]);
        RawFrame? f = await ws.ReadFrameAsync();
        Assert.Equal(2, f!.Opcode);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, f.Payload);
    }

    [Fact]
    public async Task Continuation_without_a_start_fails_with_1002()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendFrameAsync(0, "x"u8.ToArray());
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task New_data_frame_inside_a_fragmented_message_fails_with_1002()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync([.. RawWebSocket.TextFrame("a", fin: false), .. RawWebSocket.TextFrame("b")]);
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Fragmented_ping_fails_with_1002()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendFrameAsync(9, "x"u8.ToArray(), fin: false);
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }
}

public class Utf8HandlingTests
{
    public static TheoryData<string> Invalid => new()
    {
        "CEBAE1BDB9CF83CEBCCEB5EDA080656469746564", "80", "BF", "C0AF", "E080AF", "F08080AF", "F8808080AF",
        "C1BF", "E09FBF", "F08FBFBF", "EDA080", "EDBFBF", "EDA080EDB080", "F4908080", "F5", "FE", "FF",
        "C0", "E0", "E080", "F0", "F08080", "C020", "E0A020", "6869EDA0",
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task Invalid_utf8_in_one_frame_fails_with_1007(string hex)
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendFrameAsync(1, Convert.FromHexString(hex));
        Assert.Equal(1007, await ws.ExpectCloseAsync());
    }

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task Invalid_utf8_fragmented_byte_per_frame_fails_with_1007(string hex)
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        byte[] bytes = Convert.FromHexString(hex);
        var frames = new List<byte>();
        for (int i = 0; i < bytes.Length; i++)
        {
            frames.AddRange(RawWebSocket.Frame(i == 0 ? 1 : 0, [bytes[i]], fin: i == bytes.Length - 1));
        }

        await ws.SendAsync([.. frames]);
        Assert.Equal(1007, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Invalid_utf8_is_detected_mid_frame_without_the_rest_of_the_frame()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        // The frame announces 1000 bytes; only the first 6 (with a surrogate at bytes 4-5) are ever sent.
        byte[] frame = RawWebSocket.Frame(1, [.. "okok"u8, 0xED, 0xA0, .. new byte[994]]);
        await ws.SendAsync(frame[..(4 + 4 + 6)]);
        Assert.Equal(1007, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Valid_utf8_split_inside_code_points_across_frames_echoes()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        byte[] text = Encoding.UTF8.GetBytes("κόσμε€𝄞");
        var frames = new List<byte>();
        for (int i = 0; i < text.Length; i++)
        {
            frames.AddRange(RawWebSocket.Frame(i == 0 ? 1 : 0, [text[i]], fin: i == text.Length - 1));
        }

        await ws.SendAsync([.. frames]);
        Assert.Equal("κόσμε€𝄞", (await ws.ReadFrameAsync())!.Text);
    }
}

public class LimitsTests
{
    [Fact]
    public async Task Message_over_the_limit_fails_with_1009_from_the_length_header_alone()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync(RawWebSocket.Frame(2, [], declaredLength: TestServer.MaxMessageSize + 1));
        Assert.Equal(1009, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Fragments_summing_over_the_limit_fail_with_1009()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync(RawWebSocket.Frame(2, new byte[1024], fin: false));
        await ws.SendAsync(RawWebSocket.Frame(0, [], fin: false, declaredLength: TestServer.MaxMessageSize));
        Assert.Equal(1009, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Length_of_2_pow_63_fails_with_1002()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Message_at_the_limit_echoes()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        byte[] payload = new byte[16 * 1024 * 1024];
        new Random(5).NextBytes(payload);
        await ws.SendFrameAsync(2, payload);
        Assert.Equal(payload, (await ws.ReadFrameAsync())!.Payload);
    }
}

public class ClosingHandshakeTests
{
    [Theory]
    [InlineData(1000)] [InlineData(1001)] [InlineData(1002)] [InlineData(1003)] [InlineData(1007)] [InlineData(1008)]
    [InlineData(1009)] [InlineData(1010)] [InlineData(1011)] [InlineData(1012)] [InlineData(1013)] [InlineData(1014)]
    [InlineData(3000)] [InlineData(3999)] [InlineData(4000)] [InlineData(4999)]
    public async Task Close_with_a_valid_code_is_answered_with_the_same_code_and_tcp_close(int code)
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync(RawWebSocket.CloseFrame(code, "reason"));
        Assert.Equal(code, await ws.ExpectCloseAsync());
    }

    [Theory]
    [InlineData(0)] [InlineData(999)] [InlineData(1004)] [InlineData(1005)] [InlineData(1006)] [InlineData(1015)]
    [InlineData(1016)] [InlineData(1100)] [InlineData(2000)] [InlineData(2999)] [InlineData(5000)] [InlineData(65535)]
    public async Task Close_with_an_invalid_code_fails_with_1002(int code)
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync(RawWebSocket.CloseFrame(code));
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Empty_close_is_answered_with_an_empty_close()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendFrameAsync(8, []);
        Assert.Equal(1005, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task One_byte_close_payload_fails_with_1002()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendFrameAsync(8, [0x03]);
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Close_reason_with_invalid_utf8_fails_with_1002()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendFrameAsync(8, [0x03, 0xE8, 0xCE, 0xBA, 0xED, 0xA0, 0x80]);
        Assert.Equal(1002, await ws.ExpectCloseAsync());
    }

    [Fact]
    public async Task Nothing_is_echoed_for_data_after_the_close_frame()
    {
        var server = await TestServer.Shared;
        await using var ws = await RawWebSocket.ConnectAsync(server.Port);
        await ws.SendAsync([.. RawWebSocket.TextFrame("before"), .. RawWebSocket.CloseFrame(1000), .. RawWebSocket.TextFrame("after")]);
        Assert.Equal("before", (await ws.ReadFrameAsync())!.Text);
        RawFrame? close = await ws.ReadFrameAsync();
        Assert.Equal((8, 1000), (close!.Opcode, close.CloseCode));
        Assert.Null(await ws.ReadFrameAsync());
    }

    [Fact]
    public async Task Server_initiated_close_carries_code_and_reason_and_waits_for_the_reply()
    {
        var server = await TestServer.Shared;
        string tag = Guid.NewGuid().ToString("N");
        await using var ws = await RawWebSocket.ConnectAsync(server.Port, "/probe?tag=" + tag);
        await ws.SendAsync(RawWebSocket.TextFrame("close:4321:server says bye"));
        RawFrame? close = await ws.ReadFrameAsync();
        Assert.Equal((8, 4321, "server says bye"), (close!.Opcode, close.CloseCode, Encoding.UTF8.GetString(close.Payload[2..])));
        Assert.False(server.ProbeClosed(tag).IsCompleted); // still waiting for our close frame
        await ws.SendAsync(RawWebSocket.CloseFrame(4321));
        Assert.Null(await ws.ReadFrameAsync()); // then the server closes TCP
        var status = await server.ProbeClosed(tag).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(new WebSocketCloseStatus(4321, "", true), status);
    }

    [Fact]
    public async Task Peer_vanishing_without_close_is_reported_as_1006_not_clean()
    {
        var server = await TestServer.Shared;
        string tag = Guid.NewGuid().ToString("N");
        var ws = await RawWebSocket.ConnectAsync(server.Port, "/probe?tag=" + tag);
        await ws.DisposeAsync();
        var status = await server.ProbeClosed(tag).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1006, status.Code);
        Assert.False(status.WasClean);
    }
}
