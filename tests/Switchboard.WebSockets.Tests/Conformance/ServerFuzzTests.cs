using System.IO.Compression;
using System.Text;

namespace Switchboard.WebSockets.Tests.Conformance;

/// <summary>
/// Random frame sequences from a peer, over real sockets, with and without permessage-deflate: whatever arrives, the
/// server answers only with well-formed frames, ends every connection it cannot continue with a valid close code,
/// closes the TCP connection when the peer stops sending, and keeps serving everyone else; a damaged opening
/// handshake gets an HTTP status (or, unfinished, a closed connection). FUZZ_N=4000 in the environment runs more
/// connections (160 frame sequences and 120 handshakes by default).
/// </summary>
public class ServerFuzzTests
{
    private static readonly byte[] Text = Encoding.UTF8.GetBytes("héllo wörld ✓ 🎉 the quick brown fox ");

    private static byte[] Payload(Random random, int length)
    {
        byte[] payload = new byte[length];
        if (random.Next(3) == 0)
        {
            random.NextBytes(payload);
            return payload;
        }

        for (int at = 0; at < length; at += Text.Length)
        {
            Text.AsSpan(0, Math.Min(Text.Length, length - at)).CopyTo(payload.AsSpan(at));
        }

        return payload;
    }

    /// <summary>A raw DEFLATE block sequence for <paramref name="data"/> without the 0x00 0x00 0xff 0xff tail (RFC 7692 §7.2.1).</summary>
    private static byte[] Deflate(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var deflate = new DeflateStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        {
            deflate.Write(data);
            deflate.Flush(); // sync flush: ends with an empty stored block, 00 00 ff ff
        }

        byte[] bytes = ms.ToArray();
        int cut = bytes.AsSpan().LastIndexOf((ReadOnlySpan<byte>)[0x00, 0x00, 0xff, 0xff]);
        return cut >= 0 ? bytes[..cut] : bytes;
    }

    private static byte[] Input(Random random, bool deflate)
    {
        var bytes = new List<byte>();
        bool inMessage = false;
        int frames = random.Next(1, 8);
        for (int f = 0; f < frames; f++)
        {
            bool odd = random.Next(15) == 0;
            bool control = random.Next(4) == 0;
            int opcode = odd ? random.Next(16) : control ? 9 + random.Next(2) : inMessage ? 0 : 1 + random.Next(2); // closes come from mutations
            byte[] payload = Payload(random, control && !odd ? random.Next(126) : random.Next(5) == 0 ? random.Next(70_000) : random.Next(200));
            bool fin = control ? !odd : random.Next(3) != 0;
            int rsv = odd ? random.Next(8) : 0;
            if (deflate && !control && opcode != 0 && fin && random.Next(2) == 0)
            {
                payload = random.Next(4) == 0 ? payload : Deflate(payload); // mostly valid compressed data, sometimes not
                rsv = 4;
            }

            if (!control)
            {
                inMessage = !fin;
            }

            bytes.AddRange(RawWebSocket.Frame(opcode, payload, fin, rsv, masked: random.Next(25) != 0));
        }

        ByteMutations.Apply(bytes, random, maxMutations: 2);
        return [.. bytes];
    }

    private static byte[] HandshakeRequest(Random random)
    {
        string[] extensions = ["permessage-deflate", "permessage-deflate; client_max_window_bits", "permessage-deflate; server_max_window_bits=7", "x-custom"];
        var lines = new List<string>
        {
            random.Next(8) == 0 ? "HEAD /echo HTTP/1.1" : random.Next(8) == 0 ? "GET /nowhere HTTP/1.1" : "GET /echo?x=1 HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            random.Next(8) == 0 ? "Sec-WebSocket-Version: 8" : "Sec-WebSocket-Version: 13",
        };
        if (random.Next(2) == 0)
        {
            lines.Add("Sec-WebSocket-Extensions: " + extensions[random.Next(extensions.Length)]);
        }

        if (random.Next(4) == 0)
        {
            lines.RemoveAt(1 + random.Next(lines.Count - 1));
        }

        var bytes = new List<byte>(Encoding.ASCII.GetBytes(string.Join("\r\n", lines) + "\r\n\r\n"));
        ByteMutations.Apply(bytes, random, maxMutations: 3);
        return [.. bytes];
    }

    [Fact]
    public async Task Damaged_handshakes_get_an_http_status_or_a_closed_connection_never_a_server_error()
    {
        TestServer server = await TestServer.Shared;
        var random = new Random(9112);
        byte[][] requests = [.. Enumerable.Range(0, int.TryParse(Environment.GetEnvironmentVariable("FUZZ_N"), out int n) ? n : 120).Select(_ => HandshakeRequest(random))];
        int upgraded = 0, refused = 0;
        using var gate = new SemaphoreSlim(8);
        await Task.WhenAll(requests.Select(async request =>
        {
            await gate.WaitAsync();
            try
            {
                await using RawWebSocket ws = await RawWebSocket.OpenTcpAsync(server.Port);
                try
                {
                    await ws.SendAsync(request);
                    ws.ShutdownSend(); // an unfinished head then ends here instead of waiting for the handshake timeout
                }
                catch (IOException)
                {
                    // refused and reset while still sending
                }

                string response = await ws.ReadToEndAsync();
                if (response.Length == 0)
                {
                    return; // closed without an answer: a request that never ended
                }

                Assert.Matches(@"^HTTP/1\.1 [1-5][0-9][0-9] ", response);
                Assert.False(response.StartsWith("HTTP/1.1 5", StringComparison.Ordinal) && !response.StartsWith("HTTP/1.1 505 ", StringComparison.Ordinal), response); // 505: a damaged version
                Interlocked.Increment(ref response.StartsWith("HTTP/1.1 101 ", StringComparison.Ordinal) ? ref upgraded : ref refused);
            }
            finally
            {
                gate.Release();
            }
        }));

        Assert.True(upgraded > 10 && refused > 10, $"{upgraded} upgraded, {refused} refused");
        await using RawWebSocket check = await RawWebSocket.ConnectAsync(server.Port);
        await check.SendAsync(RawWebSocket.TextFrame("still here"));
        Assert.Equal("still here", (await check.ReadFrameAsync())!.Text);
    }

    private static bool ValidCloseCode(int code) =>
        code is 1005 /* no code in the frame */ or (>= 1000 and <= 1003) or (>= 1007 and <= 1011) or (>= 3000 and <= 4999);

    [Fact]
    public async Task Random_frames_get_well_formed_answers_and_a_clean_end()
    {
        TestServer server = await TestServer.Shared;
        var random = new Random(7692);
        (byte[] Input, bool Deflate, int Chop)[] cases = [.. Enumerable.Range(0, int.TryParse(Environment.GetEnvironmentVariable("FUZZ_N"), out int n) ? n : 160).Select(i =>
        {
            bool deflate = i % 2 == 1;
            return (Input(random, deflate), deflate, random.Next(4) == 0 ? random.Next(1, 64) : int.MaxValue);
        })];
        int closedWithFrame = 0, echoed = 0, echoedCompressed = 0;
        using var gate = new SemaphoreSlim(8);
        await Task.WhenAll(cases.Select(async c =>
        {
            await gate.WaitAsync();
            try
            {
                RawWebSocket ws;
                if (c.Deflate)
                {
                    (ws, string head) = await RawWebSocket.ConnectWithExtensionsAsync(server.Port, "permessage-deflate; client_max_window_bits");
                    Assert.Contains("permessage-deflate", head);
                }
                else
                {
                    ws = await RawWebSocket.ConnectAsync(server.Port);
                }

                await using (ws)
                {
                    try
                    {
                        await ws.SendChoppedAsync(c.Input, Math.Min(c.Chop, c.Input.Length));
                        ws.ShutdownSend();
                    }
                    catch (IOException)
                    {
                        // the server already failed the connection and reset it while we were still sending
                    }

                    // Frames until the server ends the TCP connection (ReadFrameAsync asserts they are unmasked).
                    while (await ws.ReadFrameAsync() is RawFrame frame)
                    {
                        Assert.True(frame.Opcode is 1 or 2 or 0 or 8 or 9 or 10, $"opcode {frame.Opcode}");
                        if (frame.Opcode == 8)
                        {
                            Assert.True(ValidCloseCode(frame.CloseCode), $"close code {frame.CloseCode}");
                            Interlocked.Increment(ref closedWithFrame);
                        }
                        else if (frame.Opcode is 1 or 2)
                        {
                            Interlocked.Increment(ref echoed);
                            if (c.Deflate)
                            {
                                Interlocked.Increment(ref echoedCompressed);
                            }
                        }
                    }
                }
            }
            finally
            {
                gate.Release();
            }
        }));

        // The inputs reach the handlers and the failure paths both.
        Assert.True(echoed > 20, $"{echoed} echoed");
        Assert.True(echoedCompressed > 10, $"{echoedCompressed} echoed on compressed connections");
        Assert.True(closedWithFrame > 20, $"{closedWithFrame} closes");

        // And the server still serves: a plain round trip, with and without compression.
        foreach (bool deflate in new[] { false, true })
        {
            await using RawWebSocket ws = deflate
                ? (await RawWebSocket.ConnectWithExtensionsAsync(server.Port, "permessage-deflate")).Socket
                : await RawWebSocket.ConnectAsync(server.Port);
            await ws.SendAsync(RawWebSocket.TextFrame("still here"));
            RawFrame? reply = await ws.ReadFrameAsync();
            Assert.NotNull(reply);
            Assert.Equal(1, reply.Opcode);
        }
    }
}
