using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace Switchboard.WebSockets.AspNetCore.Sockets;

/// <summary>Accepts TCP (or Unix domain socket) connections on one bound endpoint for Kestrel.</summary>
internal sealed class SocketListener : IConnectionListener
{
    private readonly Socket _listen;
    private readonly int _maxReadBuffer;
    private readonly EndPoint? _sharedLocal;

    private SocketListener(Socket listen, int maxReadBuffer)
    {
        _listen = listen;
        _maxReadBuffer = maxReadBuffer;
        EndPoint = listen.LocalEndPoint!;
        // Bound to one address, every accepted connection's local endpoint is this one: handed to each instead of a
        // getsockname and two new objects per connection. Bound to any address, each connection asks its socket.
        _sharedLocal = EndPoint is IPEndPoint ip && !ip.Address.Equals(IPAddress.Any) && !ip.Address.Equals(IPAddress.IPv6Any) ? EndPoint : null;
    }

    /// <summary>The bound endpoint (with the port the system chose when asked for port 0).</summary>
    public EndPoint EndPoint { get; }

    public static SocketListener Bind(EndPoint endPoint, int backlog, int maxReadBuffer)
    {
        Socket listen = endPoint switch
        {
            UnixDomainSocketEndPoint unix => new Socket(unix.AddressFamily, SocketType.Stream, ProtocolType.Unspecified),
            IPEndPoint ip => new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp),
            _ => throw new NotSupportedException($"{endPoint.GetType().Name} is not supported by this transport."),
        };

        try
        {
            if (endPoint is IPEndPoint { } any && any.Address.Equals(IPAddress.IPv6Any))
            {
                listen.DualMode = true; // Kestrel's convention: [::] takes IPv4 too
            }

            listen.Bind(endPoint);
            listen.Listen(backlog);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            listen.Dispose();
            throw new AddressInUseException(e.Message, e);
        }
        catch
        {
            listen.Dispose();
            throw;
        }

        return new SocketListener(listen, maxReadBuffer);
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listen.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return null; // unbound: no more connections
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted)
            {
                return null;
            }
            catch (SocketException)
            {
                continue; // reset while it waited in the backlog: take the next one
            }

            try
            {
                if (socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
                {
                    socket.NoDelay = true; // messages are small and latency matters; batching is done above
                }

                NonBlockingSocket.Prepare(socket); // reads and writes try the kernel once and never wait in it
            }
            catch (SocketException)
            {
                socket.Dispose(); // gone already
                continue;
            }

            var connection = new SocketConnection(socket, _maxReadBuffer, _sharedLocal);
            try
            {
                connection.Start();
            }
            catch (SocketException)
            {
                socket.Dispose(); // e.g. out of kernel memory for the registration: drop this one, keep accepting
                continue;
            }

            return connection;
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _listen.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _listen.Dispose();
        return ValueTask.CompletedTask;
    }
}
