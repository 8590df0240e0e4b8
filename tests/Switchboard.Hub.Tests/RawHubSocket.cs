using System.Net.Sockets;
using System.Text;

namespace Switchboard.Hub.Tests;

/// <summary>
/// A hub client on a bare socket, for abuse tests: it writes frames as fast as the kernel takes them and reads only when
/// told to, which no well-behaved client library would do. Frames are masked with a zero key (legal, RFC 6455 §5.3), so
/// the payload bytes go out as they are.
/// </summary>
internal sealed class RawHubSocket : IDisposable
{
    private readonly byte[] _buffer = new byte[64 * 1024];

    private RawHubSocket(Socket socket) => Socket = socket;

    public Socket Socket { get; }

    public static async Task<RawHubSocket> ConnectAsync(int port, string pathAndQuery = "/hub?name=raw")
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", port);
        string request = $"GET {pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(request));
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await socket.ReceiveAsync(one) == 0)
            {
                throw new IOException("closed during the handshake: " + head);
            }

            head.Append((char)one[0]);
        }

        Assert.StartsWith("HTTP/1.1 101", head.ToString());
        return new RawHubSocket(socket);
    }

    /// <summary>
    /// Opens a TCP connection and sends an upgrade request; returns the socket and the status line of the answer
    /// ("HTTP/1.1 101 ...", "HTTP/1.1 503 ..."), or "closed" when the server closed or reset the connection without one.
    /// </summary>
    public static async Task<(Socket Socket, string Status)> TryUpgradeAsync(int port, string path = "/echo")
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync("127.0.0.1", port);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                                                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
            var line = new StringBuilder();
            var one = new byte[1];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (!line.ToString().EndsWith("\r\n", StringComparison.Ordinal))
            {
                if (await socket.ReceiveAsync(one, cts.Token) == 0)
                {
                    return (socket, "closed");
                }

                line.Append((char)one[0]);
            }

            return (socket, line.ToString().TrimEnd());
        }
        catch (SocketException)
        {
            return (socket, "closed");
        }
    }

    /// <summary>A masked text frame (zero mask key) carrying <paramref name="payload"/>.</summary>
    public static byte[] TextFrame(ReadOnlySpan<byte> payload)
    {
        var frame = new List<byte> { 0x81 };
        if (payload.Length < 126)
        {
            frame.Add((byte)(0x80 | payload.Length));
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            frame.AddRange([0x80 | 126, (byte)(payload.Length >> 8), (byte)payload.Length]);
        }
        else
        {
            frame.Add(0x80 | 127);
            for (int shift = 56; shift >= 0; shift -= 8)
            {
                frame.Add((byte)((long)payload.Length >> shift));
            }
        }

        frame.AddRange([0, 0, 0, 0]);
        frame.AddRange(payload.ToArray());
        return [.. frame];
    }

    public static byte[] TextFrame(string json) => TextFrame(Encoding.UTF8.GetBytes(json));

    /// <summary>
    /// Writes frames from <paramref name="next"/> without reading anything, until the kernel stops taking bytes for
    /// longer than a moment or <paramref name="duration"/> passes. Returns how many frames were written whole and the
    /// bytes written in all (a last frame may be partly written; <see cref="FinishPartialAsync"/> completes it).
    /// </summary>
    public (int Frames, long Bytes, byte[]? Partial, int PartialSent) Flood(Func<int, byte[]> next, TimeSpan duration)
    {
        Socket.Blocking = false;
        long bytes = 0;
        int frames = 0;
        var deadline = DateTime.UtcNow + duration;
        while (DateTime.UtcNow < deadline)
        {
            byte[] frame = next(frames);
            int sent = 0;
            while (sent < frame.Length)
            {
                int n = Socket.Send(frame, sent, frame.Length - sent, SocketFlags.None, out SocketError error);
                if (error == SocketError.WouldBlock)
                {
                    // The server stopped reading: wait (bounded) for the socket to become writable again.
                    if (DateTime.UtcNow >= deadline || !Socket.Poll(TimeSpan.FromMilliseconds(200), SelectMode.SelectWrite))
                    {
                        Socket.Blocking = true;
                        return (frames, bytes, sent > 0 ? frame : null, sent);
                    }

                    continue;
                }

                if (error is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted)
                {
                    Socket.Blocking = true;
                    return (frames, bytes, null, 0); // the server closed the connection (e.g. 1008 at its hard queue limit)
                }

                if (error != SocketError.Success)
                {
                    throw new SocketException((int)error);
                }

                sent += n;
                bytes += n;
            }

            frames++;
        }

        Socket.Blocking = true;
        return (frames, bytes, null, 0);
    }

    /// <summary>Sends the rest of a partly written frame.</summary>
    public async Task FinishPartialAsync(byte[]? partial, int sent)
    {
        if (partial is not null)
        {
            await Socket.SendAsync(partial.AsMemory(sent));
        }
    }

    /// <summary>Reads (and discards) server bytes until <paramref name="marker"/> was seen <paramref name="count"/> times; returns all the text read.</summary>
    public async Task<int> CountUntilAsync(string marker, int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        byte[] pattern = Encoding.ASCII.GetBytes(marker);
        int seen = 0, matched = 0;
        while (seen < count)
        {
            int n = await Socket.ReceiveAsync(_buffer, cts.Token);
            if (n == 0)
            {
                break;
            }

            for (int i = 0; i < n; i++)
            {
                matched = _buffer[i] == pattern[matched] ? matched + 1 : (_buffer[i] == pattern[0] ? 1 : 0);
                if (matched == pattern.Length)
                {
                    seen++;
                    matched = 0;
                }
            }
        }

        return seen;
    }

    public void Dispose() => Socket.Dispose();
}
