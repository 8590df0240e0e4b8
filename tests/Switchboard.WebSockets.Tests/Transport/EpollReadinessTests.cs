using System.Net;
using System.Net.Sockets;
using Switchboard.WebSockets.AspNetCore.Sockets;

namespace Switchboard.WebSockets.Tests.Transport;

/// <summary>The transport's epoll set: events reach the registered listener, and only while it is registered.</summary>
public sealed class EpollReadinessTests
{
    private sealed class Listener : IReadinessListener
    {
        public System.Threading.Channels.Channel<bool> Events { get; } = System.Threading.Channels.Channel.CreateUnbounded<bool>();

        public void OnReadable(bool peerClosed) => Events.Writer.TryWrite(peerClosed);

        public Task<bool> NextAsync() => Events.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static Task<(Socket Client, Socket Server, Socket Listen)> PairAsync() => LoopbackPair.ConnectAsync();

    [Fact]
    public async Task Data_and_then_the_peers_close_are_reported_to_the_listener()
    {
        Assert.True(EpollReadiness.IsSupported);
        (Socket client, Socket server, Socket listen) = await PairAsync();
        using (listen)
        using (client)
        using (server)
        {
            var listener = new Listener();
            ulong token = EpollReadiness.Shared.Register(server, listener);
            await client.SendAsync(new byte[] { 1 });
            Assert.False(await listener.NextAsync()); // data
            Assert.Equal(1, server.Receive(new byte[8]));
            client.Shutdown(SocketShutdown.Send);
            Assert.True(await listener.NextAsync()); // the peer's end of stream: a new edge, flagged as a close
            server.Dispose();
            EpollReadiness.Shared.Unregister(token);
        }
    }

    [Fact]
    public async Task A_token_stops_matching_once_unregistered_even_when_its_slot_is_reused()
    {
        (Socket client1, Socket server1, Socket listen1) = await PairAsync();
        (Socket client2, Socket server2, Socket listen2) = await PairAsync();
        using (listen1)
        using (client1)
        using (listen2)
        using (client2)
        {
            ulong first = EpollReadiness.Shared.Register(server1, new Listener());
            Assert.True(EpollReadiness.Shared.IsRegistered(first));
            server1.Dispose(); // closing takes the descriptor out of the set
            EpollReadiness.Shared.Unregister(first);
            Assert.False(EpollReadiness.Shared.IsRegistered(first));

            ulong second = EpollReadiness.Shared.Register(server2, new Listener());
            Assert.True(EpollReadiness.Shared.IsRegistered(second));
            Assert.False(EpollReadiness.Shared.IsRegistered(first)); // a stale event for the first would be dropped
            server2.Dispose();
            EpollReadiness.Shared.Unregister(second);
        }
    }

    [Fact]
    public async Task A_connection_gives_up_its_slot_when_it_is_disposed()
    {
        SocketListener listener = SocketListener.Bind(new IPEndPoint(IPAddress.Loopback, 0), 16, 64 * 1024);
        await using (listener)
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(listener.EndPoint);
            var connection = (SocketConnection)(await listener.AcceptAsync())!;
            ulong token = connection.ReadinessToken;
            Assert.True(EpollReadiness.Shared.IsRegistered(token));
            await connection.DisposeAsync();
            Assert.False(EpollReadiness.Shared.IsRegistered(token));
        }
    }
}
