using System.Net;
using System.Net.Sockets;

namespace Switchboard.WebSockets.Tests.Transport;

/// <summary>
/// The engine's own <c>send</c>/<c>recv</c> on non-blocking sockets: for every outcome (data, nothing yet, a full
/// socket buffer, the end of the stream, a reset, a socket already disposed) it reports what the runtime's
/// <see cref="Socket.Send(ReadOnlySpan{byte}, SocketFlags, out SocketError)"/> and
/// <see cref="Socket.Receive(Span{byte}, SocketFlags, out SocketError)"/> report on an identical connection.
/// </summary>
public sealed class NonBlockingSocketTests
{
    private delegate int SendCall(Socket socket, ReadOnlySpan<byte> data, out SocketError error);

    private delegate int ReceiveCall(Socket socket, Span<byte> buffer, out SocketError error);

    private static readonly SendCall OwnSend = NonBlockingSocket.Send;
    private static readonly ReceiveCall OwnReceive = NonBlockingSocket.Receive;
    private static readonly SendCall RuntimeSend = (Socket s, ReadOnlySpan<byte> d, out SocketError e) => s.Send(d, SocketFlags.None, out e);
    private static readonly ReceiveCall RuntimeReceive = (Socket s, Span<byte> b, out SocketError e) => s.Receive(b, SocketFlags.None, out e);

    public static TheoryData<string> Implementations => new() { "own", "runtime" };

    private static (SendCall Send, ReceiveCall Receive) Calls(string which) =>
        which == "own" ? (OwnSend, OwnReceive) : (RuntimeSend, RuntimeReceive);

    private sealed class Pair : IDisposable
    {
        public required Socket Listen { get; init; }

        public required Socket Client { get; init; }

        public required Socket Server { get; init; }

        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
            Listen.Dispose();
        }
    }

    // The engine's calls run on a socket readied as its transport readies one; the runtime's need non-blocking mode.
    private static async Task<Pair> PairAsync(string which)
    {
        (Socket client, Socket server, Socket listen) = await LoopbackPair.ConnectAsync();
        if (which == "own")
        {
            NonBlockingSocket.Prepare(server);
        }
        else
        {
            server.Blocking = false;
        }

        return new Pair { Listen = listen, Client = client, Server = server };
    }

    /// <summary>Waits (bounded) until the kernel reports the socket readable, so a receive has something to return.</summary>
    private static void AwaitReadable(Socket socket) => Assert.True(socket.Poll(TimeSpan.FromSeconds(10), SelectMode.SelectRead));

    [Theory]
    [MemberData(nameof(Implementations))]
    public async Task Data_goes_both_ways_and_an_empty_socket_would_block(string which)
    {
        (SendCall send, ReceiveCall receive) = Calls(which);
        using Pair p = await PairAsync(which);
        var buffer = new byte[64];

        Assert.Equal(0, receive(p.Server, buffer, out SocketError error));
        Assert.Equal(SocketError.WouldBlock, error);

        Assert.Equal(5, send(p.Server, "hello"u8, out error));
        Assert.Equal(SocketError.Success, error);
        int got = p.Client.Receive(buffer);
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buffer, 0, got));

        p.Client.Send("world!"u8);
        AwaitReadable(p.Server);
        Assert.Equal(6, receive(p.Server, buffer, out error));
        Assert.Equal(SocketError.Success, error);
        Assert.Equal("world!", System.Text.Encoding.ASCII.GetString(buffer, 0, 6));

        // A buffer smaller than what is waiting takes its length, and the rest stays for the next call.
        p.Client.Send("abcdef"u8);
        AwaitReadable(p.Server);
        Assert.Equal(4, receive(p.Server, buffer.AsSpan(0, 4), out error));
        Assert.Equal(2, receive(p.Server, buffer, out error));
        Assert.Equal("ef", System.Text.Encoding.ASCII.GetString(buffer, 0, 2));
        Assert.Equal(0, receive(p.Server, buffer, out error));
        Assert.Equal(SocketError.WouldBlock, error);
    }

    [Theory]
    [MemberData(nameof(Implementations))]
    public async Task A_full_socket_buffer_takes_part_then_would_block_and_loses_nothing(string which)
    {
        (SendCall send, _) = Calls(which);
        using Pair p = await PairAsync(which);
        p.Server.SendBufferSize = 4096;
        p.Client.ReceiveBufferSize = 4096;
        var chunk = new byte[64 * 1024];
        long total = 0;
        var expected = new List<byte>();
        for (int i = 0; i < 1000; i++)
        {
            for (int k = 0; k < chunk.Length; k++)
            {
                chunk[k] = (byte)(i * 31 + k);
            }

            int n = send(p.Server, chunk, out SocketError error);
            if (error == SocketError.WouldBlock)
            {
                Assert.Equal(0, n);
                break;
            }

            Assert.Equal(SocketError.Success, error);
            Assert.InRange(n, 1, chunk.Length);
            expected.AddRange(chunk.AsSpan(0, n));
            total += n;
            Assert.True(i < 999, "the socket buffer never filled");
        }

        Assert.InRange(total, 1, 100L * chunk.Length);

        // What was taken arrives intact.
        p.Server.Shutdown(SocketShutdown.Send);
        var received = new List<byte>();
        var buffer = new byte[16 * 1024];
        int r;
        while ((r = await p.Client.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(TimeSpan.FromSeconds(10))) > 0)
        {
            received.AddRange(buffer.AsSpan(0, r));
        }

        Assert.Equal(expected, received);
    }

    [Theory]
    [MemberData(nameof(Implementations))]
    public async Task The_peers_orderly_close_is_the_end_of_the_stream(string which)
    {
        (SendCall send, ReceiveCall receive) = Calls(which);
        using Pair p = await PairAsync(which);
        p.Client.Send("last"u8);
        p.Client.Shutdown(SocketShutdown.Send);
        var buffer = new byte[64];
        AwaitReadable(p.Server);
        Assert.Equal(4, receive(p.Server, buffer, out SocketError error));
        Assert.Equal(0, receive(p.Server, buffer, out error));
        Assert.Equal(SocketError.Success, error);

        // This side can still send after the peer's half-close.
        Assert.Equal(3, send(p.Server, "bye"u8, out error));
        Assert.Equal(SocketError.Success, error);
    }

    [Fact]
    public async Task A_reset_and_a_send_after_it_report_the_runtimes_errors()
    {
        // The same sequence on two identical connections: the runtime's calls on one, the engine's on the other.
        var results = new List<(int, SocketError)>[2];
        foreach ((int i, string which) in new[] { (0, "runtime"), (1, "own") })
        {
            (SendCall send, ReceiveCall receive) = Calls(which);
            using Pair p = await PairAsync(which);
            p.Client.LingerState = new LingerOption(true, 0);
            p.Client.Close(); // RST
            AwaitReadable(p.Server);
            var seen = new List<(int, SocketError)>();
            var buffer = new byte[64];
            int n = receive(p.Server, buffer, out SocketError error);
            seen.Add((n, error));
            n = send(p.Server, "after"u8, out error);
            seen.Add((n, error));
            n = send(p.Server, "again"u8, out error);
            seen.Add((n, error));
            results[i] = seen;
        }

        Assert.Equal((0, SocketError.ConnectionReset), results[1][0]);
        Assert.Equal(results[0], results[1]);
    }

    [Fact]
    public async Task A_readied_socket_never_waits_and_holds_no_runtime_state_on_linux()
    {
        using Pair p = await PairAsync("own");
        Assert.True(NonBlockingSocket.NeverWaits(p.Server));
        var buffer = new byte[8];
        Assert.Equal(0, NonBlockingSocket.Receive(p.Server, buffer, out SocketError error)); // nothing there: returns
        Assert.Equal(SocketError.WouldBlock, error);
        Assert.Equal(2, NonBlockingSocket.Send(p.Server, "hi"u8, out error));
        Assert.Equal(2, p.Client.Receive(buffer));
        if (OperatingSystem.IsLinux())
        {
            // Each call asks the kernel not to wait; the socket was not switched, so the runtime made nothing for it.
            Assert.True(p.Server.Blocking);
            Assert.False(RuntimeSocketState.HasAsyncContext(p.Server));
        }
        else
        {
            Assert.False(p.Server.Blocking);
        }
    }

    [Theory]
    [MemberData(nameof(Implementations))]
    public async Task A_disposed_socket_throws_ObjectDisposedException(string which)
    {
        (SendCall send, ReceiveCall receive) = Calls(which);
        Pair p = await PairAsync(which);
        p.Dispose();
        Assert.Throws<ObjectDisposedException>(() => send(p.Server, "x"u8, out _));
        Assert.Throws<ObjectDisposedException>(() => receive(p.Server, new byte[8], out _));
    }
}
