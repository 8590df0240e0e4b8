using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace Switchboard.WebSockets;

/// <summary>
/// Where the writer puts a batch and how it hands it over: the transport's output pipe, or one <c>send</c> on the
/// socket when nothing sits between (<see cref="SocketSender"/>). The output pipe is completed at the end either way
/// (that is how a host such as Kestrel learns to shut the socket down).
/// </summary>
internal abstract class TransportSender
{
    /// <summary>Where the next frames are written.</summary>
    public abstract IBufferWriter<byte> Output { get; }

    /// <summary>Hands everything written so far to the transport.</summary>
    public abstract ValueTask FlushAsync();

    /// <summary>The batch is out and the queue is empty: let go of batch memory.</summary>
    public virtual void Idle()
    {
    }

    public static TransportSender Create(PipeWriter output, Socket? socket) =>
        socket is null ? new PipeSender(output) : new SocketSender(socket);

    private sealed class PipeSender(PipeWriter output) : TransportSender
    {
        public override IBufferWriter<byte> Output => output;

        public override async ValueTask FlushAsync()
        {
            FlushResult r = await output.FlushAsync().ConfigureAwait(false);
            if (r.IsCompleted || r.IsCanceled)
            {
                throw new IOException("The transport closed while writing.");
            }
        }
    }
}

/// <summary>Sending on a connected socket without per-socket state for the common case.</summary>
public static class SocketSend
{
    /// <summary>
    /// Sends all of <paramref name="data"/>. Where a send cannot wait (<see cref="NonBlockingSocket.NeverWaits"/>) it
    /// first tries one plain <c>send</c>, which finishes the job whenever the socket buffer has room (the common case)
    /// and creates no per-socket state; only what did not fit waits in
    /// <see cref="Socket.SendAsync(ReadOnlyMemory{byte}, SocketFlags, CancellationToken)"/> (which makes the runtime's
    /// state for the socket and keeps an operation object on it from then on: idle connections that never filled their
    /// socket buffer hold neither).
    /// </summary>
    public static ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (NonBlockingSocket.NeverWaits(socket))
        {
            int sent = NonBlockingSocket.Send(socket, data.Span, out SocketError error);
            if (error is not (SocketError.Success or SocketError.WouldBlock))
            {
                throw new SocketException((int)error);
            }

            data = data[Math.Max(0, sent)..];
            if (data.IsEmpty)
            {
                return ValueTask.CompletedTask;
            }
        }

        return SendRestAsync(socket, data);

        static async ValueTask SendRestAsync(Socket socket, ReadOnlyMemory<byte> data)
        {
            while (!data.IsEmpty)
            {
                data = data[await socket.SendAsync(data, SocketFlags.None).ConfigureAwait(false)..];
            }
        }
    }
}
