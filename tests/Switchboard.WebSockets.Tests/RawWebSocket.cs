using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace Switchboard.WebSockets.Tests;

/// <summary>A FIFO of received bytes with O(1) removal from the front.</summary>
internal sealed class ByteQueue
{
    private byte[] _data = new byte[65536];
    private int _start;
    private int _end;

    public int Count => _end - _start;

    public byte this[int index] => _data[_start + index];

    public void Add(ReadOnlySpan<byte> bytes)
    {
        if (_end + bytes.Length > _data.Length)
        {
            byte[] next = Count + bytes.Length > _data.Length / 2 ? new byte[Math.Max(_data.Length * 2, Count + bytes.Length)] : _data;
            Array.Copy(_data, _start, next, 0, Count);
            _end = Count;
            _start = 0;
            _data = next;
        }

        bytes.CopyTo(_data.AsSpan(_end));
        _end += bytes.Length;
    }

    /// <summary>Removes and returns the first <paramref name="n"/> bytes.</summary>
    public byte[] Take(int n)
    {
        byte[] result = _data.AsSpan(_start, n).ToArray();
        _start += n;
        return result;
    }
}

/// <summary>A frame as read off the wire by the raw test peer.</summary>
public sealed record RawFrame(bool Fin, int Rsv, int Opcode, byte[] Payload)
{
    public string Text => Encoding.UTF8.GetString(Payload);

    public int CloseCode => Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(Payload) : 1005;
}

/// <summary>
/// A deliberately dumb peer over a raw TCP socket: writes exactly the bytes a test gives it and parses frames
/// with its own code (independent of Switchboard.Protocol), so the tests check the wire, not our abstractions.
/// </summary>
public sealed class RawWebSocket : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly ByteQueue _buffer = new();
    private static readonly byte[] MaskKey = [0x12, 0x34, 0x56, 0x78];

    private RawWebSocket(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static TimeSpan Timeout { get; } = TimeSpan.FromSeconds(15);

    /// <summary>Wraps a connected socket (no handshake: the test drives both ends).</summary>
    public static RawWebSocket FromSocket(Socket socket) => new(new TcpClient { Client = socket });

    public static async Task<RawWebSocket> OpenTcpAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        return new RawWebSocket(tcp);
    }

    /// <summary>Connects and completes a standard handshake; asserts 101.</summary>
    public static async Task<RawWebSocket> ConnectAsync(int port, string path = "/echo")
    {
        RawWebSocket ws = await OpenTcpAsync(port);
        await ws.SendAsync(Encoding.ASCII.GetBytes(
            $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
        string head = await ws.ReadHttpHeadAsync();
        Assert.StartsWith("HTTP/1.1 101 ", head);
        Assert.Contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", head);
        return ws;
    }

    /// <summary>Connects offering <paramref name="extensions"/>; asserts 101 and returns the socket with the response head.</summary>
    public static async Task<(RawWebSocket Socket, string Head)> ConnectWithExtensionsAsync(int port, string extensions, string path = "/echo")
    {
        RawWebSocket ws = await OpenTcpAsync(port);
        await ws.SendAsync(Encoding.ASCII.GetBytes(
            $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n"));
        string head = await ws.ReadHttpHeadAsync();
        Assert.StartsWith("HTTP/1.1 101 ", head);
        return (ws, head);
    }

    public async Task SendAsync(byte[] bytes)
    {
        using var cts = new CancellationTokenSource(Timeout);
        await _stream.WriteAsync(bytes, cts.Token);
    }

    /// <summary>Sends bytes in pieces of <paramref name="chop"/> bytes (1 = byte by byte).</summary>
    public async Task SendChoppedAsync(byte[] bytes, int chop)
    {
        for (int i = 0; i < bytes.Length; i += chop)
        {
            await _stream.WriteAsync(bytes.AsMemory(i, Math.Min(chop, bytes.Length - i)));
            await _stream.FlushAsync();
        }
    }

    public static byte[] Frame(int opcode, byte[] payload, bool fin = true, int rsv = 0, bool masked = true, long? declaredLength = null)
    {
        long len = declaredLength ?? payload.Length;
        var f = new List<byte> { (byte)((fin ? 0x80 : 0) | (rsv << 4) | opcode) };
        byte m = masked ? (byte)0x80 : (byte)0;
        if (len < 126)
        {
            f.Add((byte)(m | len));
        }
        else if (len <= 0xFFFF)
        {
            f.Add((byte)(m | 126));
            f.Add((byte)(len >> 8));
            f.Add((byte)len);
        }
        else
        {
            f.Add((byte)(m | 127));
            for (int i = 7; i >= 0; i--)
            {
                f.Add((byte)((ulong)len >> (8 * i)));
            }
        }

        if (masked)
        {
            f.AddRange(MaskKey);
        }

        for (int i = 0; i < payload.Length; i++)
        {
            f.Add(masked ? (byte)(payload[i] ^ MaskKey[i & 3]) : payload[i]);
        }

        return [.. f];
    }

    public static byte[] TextFrame(string text, bool fin = true) => Frame(1, Encoding.UTF8.GetBytes(text), fin);

    public static byte[] CloseFrame(int code, string reason = "") =>
        Frame(8, [(byte)(code >> 8), (byte)code, .. Encoding.UTF8.GetBytes(reason)]);

    public Task SendFrameAsync(int opcode, byte[] payload, bool fin = true, int rsv = 0) => SendAsync(Frame(opcode, payload, fin, rsv));

    public async Task<string> ReadHttpHeadAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (true)
        {
            int end = IndexOfHeadEnd();
            if (end >= 0)
            {
                string head = Encoding.ASCII.GetString(_buffer.Take(end + 4));
                return head;
            }

            if (!await FillAsync(cts.Token))
            {
                return Encoding.ASCII.GetString(_buffer.Take(_buffer.Count));
            }
        }
    }

    /// <summary>Reads everything until the server closes the connection.</summary>
    public async Task<string> ReadToEndAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (await FillAsync(cts.Token))
        {
        }

        return Encoding.UTF8.GetString(_buffer.Take(_buffer.Count));
    }

    private int IndexOfHeadEnd()
    {
        for (int i = 0; i + 3 < _buffer.Count; i++)
        {
            if (_buffer[i] == '\r' && _buffer[i + 1] == '\n' && _buffer[i + 2] == '\r' && _buffer[i + 3] == '\n')
            {
                return i;
            }
        }

        return -1;
    }

    private async Task<bool> FillAsync(CancellationToken ct)
    {
        byte[] tmp = new byte[65536];
        int n;
        try
        {
            n = await _stream.ReadAsync(tmp, ct);
        }
        catch (IOException)
        {
            return false; // reset counts as closed
        }

        if (n == 0)
        {
            return false;
        }

        _buffer.Add(tmp.AsSpan(0, n));
        return true;
    }

    private async Task<bool> EnsureAsync(int count, CancellationToken ct)
    {
        while (_buffer.Count < count)
        {
            if (!await FillAsync(ct))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Reads the next frame; null when the connection ended first.</summary>
    public async Task<RawFrame?> ReadFrameAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        if (!await EnsureAsync(2, cts.Token))
        {
            return null;
        }

        byte b0 = _buffer[0], b1 = _buffer[1];
        bool masked = (b1 & 0x80) != 0;
        long len = b1 & 0x7F;
        int pos = 2;
        if (len == 126)
        {
            if (!await EnsureAsync(4, cts.Token))
            {
                return null;
            }

            len = (_buffer[2] << 8) | _buffer[3];
            pos = 4;
        }
        else if (len == 127)
        {
            if (!await EnsureAsync(10, cts.Token))
            {
                return null;
            }

            len = 0;
            for (int i = 0; i < 8; i++)
            {
                len = (len << 8) | _buffer[2 + i];
            }

            pos = 10;
        }

        byte[] key = [];
        if (masked)
        {
            if (!await EnsureAsync(pos + 4, cts.Token))
            {
                return null;
            }

            key = [_buffer[pos], _buffer[pos + 1], _buffer[pos + 2], _buffer[pos + 3]];
            pos += 4;
        }

        if (!await EnsureAsync(pos + (int)len, cts.Token))
        {
            return null;
        }

        _buffer.Take(pos);
        byte[] payload = _buffer.Take((int)len);
        if (masked)
        {
            for (int i = 0; i < payload.Length; i++)
            {
                payload[i] ^= key[i & 3];
            }
        }

        Assert.False(masked, "a server must not mask frames (RFC 6455 §5.1)");
        return new RawFrame((b0 & 0x80) != 0, (b0 >> 4) & 7, b0 & 0xF, payload);
    }

    /// <summary>Reads frames up to the close frame; returns its code (1005 for an empty close) and asserts the TCP close follows.</summary>
    public async Task<int> ExpectCloseAsync()
    {
        while (true)
        {
            RawFrame? f = await ReadFrameAsync();
            Assert.NotNull(f);
            if (f.Opcode == 8)
            {
                Assert.Null(await ReadFrameAsync()); // the server closes the TCP connection after its close frame
                return f.CloseCode;
            }
        }
    }

    /// <summary>True when the peer has closed the TCP connection (reads until EOF, ignoring frames).</summary>
    public async Task<bool> IsClosedByPeerAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (await FillAsync(cts.Token))
        {
        }

        return true;
    }

    /// <summary>Ends what this side sends (TCP FIN); frames can still be read.</summary>
    public void ShutdownSend() => _tcp.Client.Shutdown(SocketShutdown.Send);

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
