using System.Net.Sockets;
using System.Text;

namespace Switchboard.Hub.Tests;

/// <summary>Upgrade requests that Kestrel and the RFCs refuse are refused by the server's own fast path too, with the right status.</summary>
public class HandshakeHardeningTests
{
    private const string Upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

    public static TheoryData<string, string, string> Requests => new()
    {
        { "valid", "GET /echo HTTP/1.1\r\nHost: h\r\n" + Upgrade + "\r\n", "101" },
        { "duplicate Host", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n" + Upgrade + "\r\n", "400" },
        { "HTTP/2.0 request line", "GET /echo HTTP/2.0\r\nHost: h\r\n" + Upgrade + "\r\n", "505" },
        { "101 header fields", "GET /echo HTTP/1.1\r\nHost: h\r\n" + Upgrade + string.Concat(Enumerable.Range(0, 96).Select(i => $"X-{i}: v\r\n")) + "\r\n", "431" },
        { "non-ASCII header name", "GET /echo HTTP/1.1\r\nHost: h\r\n" + Upgrade + "X-\u00e9t\u00e9: v\r\n\r\n", "400" },
        { "Transfer-Encoding and Content-Length", "GET /echo HTTP/1.1\r\nHost: h\r\n" + Upgrade + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", "400" },
        { "bare LF line ends", ("GET /echo HTTP/1.1\r\nHost: h\r\n" + Upgrade + "\r\n").Replace("\r\n", "\n", StringComparison.Ordinal), "400" },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task Each_request_gets_its_status_at_once(string what, string request, string status)
    {
        HubTestServer server = await HubTestServer.Shared;
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", server.Ws.Port);
        await socket.SendAsync(Encoding.Latin1.GetBytes(request));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5)); // far below any timeout that would end it otherwise
        var buffer = new byte[256];
        int n = await socket.ReceiveAsync(buffer, cts.Token);
        string answer = Encoding.ASCII.GetString(buffer, 0, n);
        Assert.True(answer.StartsWith($"HTTP/1.1 {status} ", StringComparison.Ordinal), $"{what}: {answer}");
    }

    [Fact]
    public async Task Empty_lines_do_not_restart_the_handshake_timeout()
    {
        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.HandshakeTimeout = TimeSpan.FromSeconds(1);
        });
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync("127.0.0.1", server.Ws.Port);
            await socket.SendAsync("\r\n\r\n"u8.ToArray());
            // The server drops the connection once the handshake timeout has passed (Kestrel's keep-alive timeout, which
            // held such a connection before, is 130 s).
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            int n;
            try
            {
                n = await socket.ReceiveAsync(new byte[16], cts.Token);
            }
            catch (SocketException)
            {
                n = 0; // reset: dropped all the same
            }

            Assert.Equal(0, n);
            Assert.False(cts.IsCancellationRequested);
        }
        finally
        {
            await server.App.StopAsync();
        }
    }
}
