using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Switchboard.Protocol;
using Switchboard.Protocol.Handshake;

namespace Switchboard.WebSockets.Tests.Conformance;

/// <summary>
/// A raw-socket server for the client mirror of the conformance suite: accepts one connection, answers the
/// handshake with whatever a test says, then sends crafted bytes and reads the client's frames.
/// </summary>
internal sealed class RawServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private TcpClient? _client;
    private NetworkStream? _stream;
    private readonly ByteQueue _buffer = new();

    public RawServer() => _listener.Start();

    public Uri Url => new($"ws://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/path?q=1");

    public string Request { get; private set; } = "";

    /// <summary>The accepted client's address and port.</summary>
    public IPEndPoint? RemoteEndPoint => (IPEndPoint?)_client?.Client.RemoteEndPoint;

    /// <summary>Accepts, reads the request, and answers with <paramref name="respond"/>(key) (default: a correct 101).</summary>
    public async Task AcceptAsync(Func<string, string>? respond = null, byte[]? alsoSend = null)
    {
        _client = await _listener.AcceptTcpClientAsync();
        _client.NoDelay = true;
        _stream = _client.GetStream();
        while (true)
        {
            string s = Encoding.ASCII.GetString(Enumerable.Range(0, _buffer.Count).Select(i => _buffer[i]).ToArray());
            int end = s.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                Request = s[..(end + 4)];
                _buffer.Take(end + 4);
                break;
            }

            await FillAsync();
        }

        string key = Request.Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase))[18..].Trim();
        string response = respond?.Invoke(key) ??
            $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {WebSocketAccept.Compute(key)}\r\n\r\n";
        byte[] bytes = [.. Encoding.ASCII.GetBytes(response), .. alsoSend ?? []];
        await _stream.WriteAsync(bytes);
    }

    public async Task AcceptSilentlyAsync()
    {
        _client = await _listener.AcceptTcpClientAsync();
        _stream = _client.GetStream();
    }

    public Task SendAsync(byte[] bytes) => _stream!.WriteAsync(bytes).AsTask();

    public static byte[] Frame(int opcode, byte[] payload, bool fin = true, int rsv = 0, bool masked = false) =>
        RawWebSocket.Frame(opcode, payload, fin, rsv, masked);

    private async Task<bool> FillAsync()
    {
        using var cts = new CancellationTokenSource(RawWebSocket.Timeout);
        byte[] tmp = new byte[65536];
        int n;
        try
        {
            n = await _stream!.ReadAsync(tmp, cts.Token);
        }
        catch (IOException)
        {
            return false;
        }

        if (n == 0)
        {
            return false;
        }

        _buffer.Add(tmp.AsSpan(0, n));
        return true;
    }

    /// <summary>Reads one client frame (asserting it is masked, RFC 6455 §5.3); null at EOF.</summary>
    public async Task<RawFrame?> ReadClientFrameAsync()
    {
        while (true)
        {
            if (_buffer.Count >= 2)
            {
                int len7 = _buffer[1] & 0x7F;
                int headerLength = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
                if (_buffer.Count >= headerLength)
                {
                    long len = len7 == 126 ? (_buffer[2] << 8) | _buffer[3]
                        : len7 == 127 ? (long)BinaryPrimitives.ReadUInt64BigEndian(Enumerable.Range(2, 8).Select(i => _buffer[i]).ToArray()) : len7;
                    if (_buffer.Count >= headerLength + len)
                    {
                        Assert.True((_buffer[1] & 0x80) != 0, "client frames must be masked (RFC 6455 §5.3)");
                        byte b0 = _buffer[0];
                        byte[] header = _buffer.Take(headerLength);
                        byte[] key = header[^4..];
                        byte[] payload = _buffer.Take((int)len);
                        for (int i = 0; i < payload.Length; i++)
                        {
                            payload[i] ^= key[i & 3];
                        }

                        LastMaskKey = BitConverter.ToUInt32(key);
                        return new RawFrame((b0 & 0x80) != 0, (b0 >> 4) & 7, b0 & 0xF, payload);
                    }
                }
            }

            if (!await FillAsync())
            {
                return null;
            }
        }
    }

    public uint LastMaskKey { get; private set; }

    /// <summary>Reads client frames up to its close frame and returns the code.</summary>
    public async Task<int> ExpectCloseAsync()
    {
        while (true)
        {
            RawFrame? f = await ReadClientFrameAsync();
            Assert.NotNull(f);
            if (f.Opcode == 8)
            {
                return f.CloseCode;
            }
        }
    }

    public void CloseTcp() => _client?.Dispose();

    public ValueTask DisposeAsync()
    {
        _client?.Dispose();
        _listener.Stop();
        return ValueTask.CompletedTask;
    }
}

public class ClientOpeningHandshakeTests
{
    private static readonly WebSocketClientOptions Fast = new() { ConnectTimeout = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task Request_is_a_valid_upgrade_with_a_fresh_key()
    {
        await using var server = new RawServer();
        Task accept = server.AcceptAsync();
        WebSocketConnection c = await WebSocketClient.ConnectAsync(server.Url, new() { SubProtocols = ["a", "b"], Headers = [new("X-Test", "1")] });
        await accept;
        Assert.StartsWith("GET /path?q=1 HTTP/1.1\r\n", server.Request);
        Assert.Contains($"\r\nHost: 127.0.0.1:{server.Url.Port}\r\n", server.Request);
        Assert.Contains("\r\nSec-WebSocket-Version: 13\r\n", server.Request);
        Assert.Contains("\r\nSec-WebSocket-Protocol: a, b\r\n", server.Request);
        Assert.Contains("\r\nX-Test: 1\r\n", server.Request);
        c.Abort();
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")] // resolves to ::1 and 127.0.0.1: the address of the local address's family is used
    public async Task Connects_from_the_local_address_it_is_given(string host)
    {
        await using var server = new RawServer();
        Task accept = server.AcceptAsync();
        var url = new UriBuilder(server.Url) { Host = host }.Uri;
        WebSocketConnection c = await WebSocketClient.ConnectAsync(url, new() { LocalAddress = IPAddress.Parse("127.0.0.2"), ConnectTimeout = TimeSpan.FromSeconds(10) });
        await accept;
        Assert.Equal(IPAddress.Parse("127.0.0.2"), server.RemoteEndPoint!.Address);
        Assert.Equal(WebSocketState.Open, c.State);
        c.Abort();
    }

    [Fact]
    public async Task Connects_from_an_ipv6_local_address()
    {
        var listener = new TcpListener(IPAddress.IPv6Loopback, 0);
        listener.Start();
        try
        {
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            Task<TcpClient> accepted = listener.AcceptTcpClientAsync();
            Task<WebSocketConnection> connecting = WebSocketClient.ConnectAsync(new Uri($"ws://[::1]:{port}/"),
                new() { LocalAddress = IPAddress.IPv6Loopback, ConnectTimeout = TimeSpan.FromMilliseconds(500) });
            using TcpClient peer = await accepted;
            Assert.Equal(IPAddress.IPv6Loopback, ((IPEndPoint)peer.Client.RemoteEndPoint!).Address);
            await Assert.ThrowsAsync<TimeoutException>(() => connecting); // no handshake answer here: only the TCP side matters
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task A_local_address_the_host_does_not_have_is_a_socket_error()
    {
        await using var server = new RawServer();
        await Assert.ThrowsAsync<SocketException>(() => WebSocketClient.ConnectAsync(server.Url, new() { LocalAddress = IPAddress.Parse("192.0.2.1") })); // TEST-NET-1
    }

    public static TheoryData<string, ClientHandshakeError> BadResponses => new()
    {
        { "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ClientHandshakeError.UnexpectedStatus },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", ClientHandshakeError.InvalidAccept },
        { "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n", ClientHandshakeError.InvalidUpgradeHeader },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n", ClientHandshakeError.InvalidConnectionHeader },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: evil\r\n\r\n", ClientHandshakeError.UnexpectedSubProtocol },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: x-custom\r\n\r\n", ClientHandshakeError.UnexpectedExtension },
    };

    [Theory]
    [MemberData(nameof(BadResponses))]
    public async Task Bad_responses_are_refused_with_the_reason(string response, ClientHandshakeError error)
    {
        await using var server = new RawServer();
        Task accept = server.AcceptAsync(key => response.Replace("{accept}", WebSocketAccept.Compute(key)));
        var ex = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => WebSocketClient.ConnectAsync(server.Url, Fast));
        Assert.Equal(error, ex.Error);
        await accept;
    }

    [Fact]
    public async Task Server_that_never_answers_times_out()
    {
        await using var server = new RawServer();
        Task accept = server.AcceptSilentlyAsync();
        await Assert.ThrowsAsync<TimeoutException>(() => WebSocketClient.ConnectAsync(server.Url, new() { ConnectTimeout = TimeSpan.FromMilliseconds(300) }));
        await accept;
    }

    [Fact]
    public async Task Cancellation_is_honoured()
    {
        await using var server = new RawServer();
        Task accept = server.AcceptSilentlyAsync();
        using var cts = new CancellationTokenSource(200);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => WebSocketClient.ConnectAsync(server.Url, Fast, cts.Token));
        await accept;
    }

    [Fact]
    public async Task Unreachable_server_is_a_socket_error()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        await Assert.ThrowsAsync<SocketException>(() => WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/"), Fast));
    }
}

public class ClientFramingTests
{
    private static async Task<(RawServer Server, WebSocketConnection Client)> OpenAsync(byte[]? firstBytes = null)
    {
        var server = new RawServer();
        Task accept = server.AcceptAsync(alsoSend: firstBytes);
        WebSocketConnection c = await WebSocketClient.ConnectAsync(server.Url, new() { Connection = new() { MaxMessageSize = 1000, CloseTimeout = TimeSpan.FromSeconds(5) } });
        await accept;
        return (server, c);
    }

    [Fact]
    public async Task Frames_sent_together_with_the_101_are_delivered()
    {
        var (server, client) = await OpenAsync([.. RawServer.Frame(1, "early"u8.ToArray()), .. RawServer.Frame(2, [9])]);
        await using var _ = server;
        Assert.Equal("early", (await client.ReceiveAsync())!.Text);
        Assert.Equal(new byte[] { 9 }, (await client.ReceiveAsync())!.Data);
        client.Abort();
    }

    [Fact]
    public async Task Client_frames_are_masked_with_a_fresh_key_each()
    {
        var (server, client) = await OpenAsync();
        await using var _ = server;
        var keys = new HashSet<uint>();
        for (int i = 0; i < 20; i++)
        {
            client.SendText("m" + i);
            RawFrame? f = await server.ReadClientFrameAsync();
            Assert.Equal("m" + i, f!.Text);
            keys.Add(server.LastMaskKey);
        }

        Assert.True(keys.Count >= 19, "masking keys must not repeat");
        client.SendFragment(MessageType.Binary, [1, 2], isFirst: true, endOfMessage: false);
        client.SendFragment(MessageType.Binary, [3], isFirst: false, endOfMessage: true);
        RawFrame? f1 = await server.ReadClientFrameAsync();
        RawFrame? f2 = await server.ReadClientFrameAsync();
        Assert.Equal((2, false), (f1!.Opcode, f1.Fin));
        Assert.Equal((0, true), (f2!.Opcode, f2.Fin));
        client.Abort();
    }

    [Fact]
    public async Task Ping_is_answered_with_a_masked_pong_with_the_same_payload()
    {
        var (server, client) = await OpenAsync();
        await using var _ = server;
        await server.SendAsync(RawServer.Frame(9, "are you there"u8.ToArray()));
        RawFrame? pong = await server.ReadClientFrameAsync();
        Assert.Equal((10, "are you there"), (pong!.Opcode, pong.Text));
        client.Abort();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Ten_pings_in_a_row_get_ten_masked_pongs_in_order(bool chopped)
    {
        var (server, client) = await OpenAsync();
        await using var _ = server;
        byte[] pings = [.. Enumerable.Range(0, 10).SelectMany(i => RawServer.Frame(9, System.Text.Encoding.ASCII.GetBytes($"ping {i}")))];
        if (chopped)
        {
            foreach (byte b in pings)
            {
                await server.SendAsync([b]);
            }
        }
        else
        {
            await server.SendAsync(pings);
        }

        for (int i = 0; i < 10; i++)
        {
            RawFrame? pong = await server.ReadClientFrameAsync();
            Assert.Equal((10, $"ping {i}"), (pong!.Opcode, pong.Text));
        }

        client.Abort();
    }

    public static TheoryData<string, int> Violations => new()
    {
        { "masked", 1002 },
        { "rsv", 1002 },
        { "opcode", 1002 },
        { "utf8", 1007 },
        { "toobig", 1009 },
        { "closecode", 1002 },
        { "continuation", 1002 },
        { "bigping", 1002 },
    };

    [Theory]
    [MemberData(nameof(Violations))]
    public async Task Server_violations_fail_the_client_with_the_right_code(string violation, int code)
    {
        var (server, client) = await OpenAsync();
        await using var _ = server;
        byte[] bad = violation switch
        {
            "masked" => RawServer.Frame(1, "x"u8.ToArray(), masked: true),
            "rsv" => RawServer.Frame(1, "x"u8.ToArray(), rsv: 2),
            "opcode" => RawServer.Frame(6, []),
            "utf8" => RawServer.Frame(1, [0xED, 0xA0, 0x80]),
            "toobig" => RawServer.Frame(2, new byte[1001]),
            "closecode" => RawServer.Frame(8, [0x03, 0xEE]),
            "continuation" => RawServer.Frame(0, [1]),
            _ => RawServer.Frame(9, new byte[126]),
        };
        Task<List<string>> reading = Task.Run(async () =>
        {
            var got = new List<string>();
            while (await client.ReceiveAsync() is { } m)
            {
                got.Add(m.Text);
            }

            return got;
        });
        await server.SendAsync([.. RawServer.Frame(1, "valid first"u8.ToArray()), .. bad]);
        Assert.Equal(code, await server.ExpectCloseAsync());
        server.CloseTcp();
        WebSocketCloseStatus status = await client.Completion.WaitAsync(RawWebSocket.Timeout);
        Assert.Equal(code, status.Code);
        Assert.False(status.WasClean);
        Assert.Equal(["valid first"], await reading.WaitAsync(RawWebSocket.Timeout)); // delivered before the failure, then the end
    }

    [Theory]
    [InlineData("rsv")]
    [InlineData("opcode")]
    [InlineData("continuation")]
    public async Task An_echoing_client_in_pull_mode_echoes_the_message_before_the_violation_then_fails(string violation)
    {
        var (server, client) = await OpenAsync();
        await using var _ = server;
        byte[] bad = violation switch
        {
            "rsv" => RawServer.Frame(1, "x"u8.ToArray(), rsv: 2),
            "opcode" => RawServer.Frame(6, []),
            _ => RawServer.Frame(0, [1]),
        };
        Task echo = Task.Run(async () =>
        {
            // The application: echo every message, as a conformance test client does.
            while (await client.ReceiveAsync() is { } m)
            {
                client.SendText(m.Text!);
            }
        });
        await server.SendAsync([.. RawServer.Frame(1, "valid first"u8.ToArray()), .. bad]);
        RawFrame? first = await server.ReadClientFrameAsync();
        Assert.Equal((1, "valid first"), (first!.Opcode, first.Text)); // the echo went out before the close
        Assert.Equal(1002, await server.ExpectCloseAsync());
        server.CloseTcp();
        await echo.WaitAsync(RawWebSocket.Timeout);
    }

    [Fact]
    public async Task Server_close_is_answered_with_the_same_code_and_reported_clean()
    {
        var (server, client) = await OpenAsync();
        await using var _ = server;
        await server.SendAsync(RawServer.Frame(8, [0x0F, 0xA1, .. "server bye"u8]));
        Assert.Equal(4001, await server.ExpectCloseAsync());
        server.CloseTcp(); // the server closes TCP first (RFC 6455 §7.1.1)
        Assert.Equal(new WebSocketCloseStatus(4001, "server bye", true), await client.Completion.WaitAsync(RawWebSocket.Timeout));
        Assert.Equal(WebSocketState.Closed, client.State);
        Assert.Equal(SendResult.Closed, client.SendText("too late"));
    }

    [Fact]
    public async Task Client_close_waits_for_the_servers_close_and_reports_clean()
    {
        var (server, client) = await OpenAsync();
        await using var _ = server;
        Task<WebSocketCloseStatus> closing = client.CloseAsync(4100, "client bye");
        RawFrame? f = await server.ReadClientFrameAsync();
        Assert.Equal((8, 4100, "client bye"), (f!.Opcode, f.CloseCode, Encoding.UTF8.GetString(f.Payload[2..])));
        Assert.Equal(WebSocketState.CloseSent, client.State);
        Assert.Equal(SendResult.Closed, client.SendText("after close"));
        await server.SendAsync(RawServer.Frame(8, [0x10, 0x04]));
        server.CloseTcp();
        Assert.Equal(new WebSocketCloseStatus(4100, "", true), await closing.WaitAsync(RawWebSocket.Timeout));
    }

    [Fact]
    public async Task Connection_dropped_without_close_is_1006()
    {
        var (server, client) = await OpenAsync();
        await using var _ = server;
        server.CloseTcp();
        WebSocketCloseStatus s = await client.Completion.WaitAsync(RawWebSocket.Timeout);
        Assert.Equal(1006, s.Code);
        Assert.False(s.WasClean);
    }
}
