using System.Net;
using System.Net.Sockets;

namespace Switchboard.WebSockets.Tests.Transport;

/// <summary>A connected TCP pair on loopback, and the listener it came from.</summary>
internal static class LoopbackPair
{
    public static async Task<(Socket Client, Socket Server, Socket Listen)> ConnectAsync()
    {
        var listen = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listen.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listen.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listen.LocalEndPoint!);
        Socket server = await listen.AcceptAsync();
        return (client, server, listen);
    }
}
