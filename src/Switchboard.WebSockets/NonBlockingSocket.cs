using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Switchboard.WebSockets;

/// <summary>
/// One <c>send</c> or <c>recv</c> that never waits, on a connected socket readied by <see cref="Prepare"/>, with the contract of
/// <see cref="Socket.Send(ReadOnlySpan{byte}, SocketFlags, out SocketError)"/> and
/// <see cref="Socket.Receive(Span{byte}, SocketFlags, out SocketError)"/>: the count moved, or
/// <see cref="SocketError.WouldBlock"/> when nothing could be, or the error; <see cref="ObjectDisposedException"/>
/// for a disposed socket.
/// </summary>
/// <remarks>
/// On Linux the call goes straight to the C library on the descriptor, held by its safe handle for the call's
/// duration so a concurrent close cannot hand the number to another connection. The runtime's own path runs a general
/// routine (buffer lists, addresses, flag translation, its native shim) around every call: in a broadcast to 1,000
/// members that was ~3.5% of the server's samples, against ~2% for this one (docs/benchmarks.md). Elsewhere, or
/// without glibc, these are the runtime's calls, on a socket <see cref="Prepare"/> switched to non-blocking mode.
/// </remarks>
public static unsafe partial class NonBlockingSocket
{
    private const string Libc = "libc.so.6";
    private const int MsgDontWait = 0x40;
    private const int MsgNoSignal = 0x4000;

    private static readonly bool s_direct = OperatingSystem.IsLinux() && NativeLibrary.TryLoad(Libc, out _);

    /// <summary>
    /// Readies a connected socket for <see cref="Send"/> and <see cref="Receive"/>. On Linux each of those calls asks
    /// the kernel not to wait (<c>MSG_DONTWAIT</c>), so the socket is left as it is: switching it to non-blocking mode
    /// through <see cref="Socket.Blocking"/> makes the runtime create its asynchronous state for the socket (224 bytes
    /// in three objects, kept for the socket's life), which an idle connection would hold for nothing. Elsewhere the
    /// socket is switched to non-blocking mode.
    /// </summary>
    public static void Prepare(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (!s_direct)
        {
            socket.Blocking = false;
        }
    }

    /// <summary>True when <see cref="Send"/> and <see cref="Receive"/> return at once on this socket rather than wait.</summary>
    public static bool NeverWaits(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return s_direct || !socket.Blocking;
    }

    /// <summary>Sends what the socket buffer takes of <paramref name="data"/> without waiting.</summary>
    public static int Send(Socket socket, ReadOnlySpan<byte> data, out SocketError error)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (!s_direct)
        {
            return socket.Send(data, SocketFlags.None, out error);
        }

        fixed (byte* p = data)
        {
            return Call(socket, p, data.Length, sending: true, out error);
        }
    }

    /// <summary>Receives what the socket holds, up to <paramref name="buffer"/>'s length, without waiting; 0 with success is the end of the stream.</summary>
    public static int Receive(Socket socket, Span<byte> buffer, out SocketError error)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (!s_direct)
        {
            return socket.Receive(buffer, SocketFlags.None, out error);
        }

        fixed (byte* p = buffer)
        {
            return Call(socket, p, buffer.Length, sending: false, out error);
        }
    }

    private static int Call(Socket socket, byte* p, int length, bool sending, out SocketError error)
    {
        SafeSocketHandle handle = socket.SafeHandle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added); // ObjectDisposedException once the socket is disposed
            int fd = (int)handle.DangerousGetHandle();
            while (true)
            {
                nint n = sending ? send(fd, p, length, MsgDontWait | MsgNoSignal) : recv(fd, p, length, MsgDontWait);
                if (n >= 0)
                {
                    error = SocketError.Success;
                    return (int)n;
                }

                int errno = Marshal.GetLastSystemError(); // right after the call, where the SetLastError stub reads it too
                if (errno != Errno.Interrupted)
                {
                    error = Errno.ToSocketError(errno);
                    return 0;
                }
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    // Without SetLastError: its stub clears errno before every call and copies it after, two more calls into the runtime
    // per send; errno is only meaningful after a failure, and is read then.
    [LibraryImport(Libc)]
    private static partial nint send(int fd, byte* buf, nint len, int flags);

    [LibraryImport(Libc)]
    private static partial nint recv(int fd, byte* buf, nint len, int flags);

    /// <summary>Linux's numbers (x86-64, Arm64) and the runtime's names for them, as its own socket calls report them.</summary>
    internal static class Errno
    {
        public const int Interrupted = 4;

        public static SocketError ToSocketError(int errno) => errno switch
        {
            11 => SocketError.WouldBlock, // EAGAIN, EWOULDBLOCK
            104 => SocketError.ConnectionReset,
            32 => SocketError.Shutdown, // EPIPE: this side shut down or the connection is gone
            103 => SocketError.ConnectionAborted,
            110 => SocketError.TimedOut,
            107 => SocketError.NotConnected,
            113 => SocketError.HostUnreachable,
            112 => SocketError.HostDown,
            101 => SocketError.NetworkUnreachable,
            100 => SocketError.NetworkDown,
            102 => SocketError.NetworkReset,
            105 or 12 => SocketError.NoBufferSpaceAvailable, // ENOBUFS, ENOMEM
            108 => SocketError.Disconnecting, // ESHUTDOWN
            90 => SocketError.MessageSize,
            9 => SocketError.OperationAborted, // EBADF
            14 => SocketError.Fault,
            22 => SocketError.InvalidArgument,
            88 => SocketError.NotSocket,
            1 or 13 => SocketError.AccessDenied,
            _ => SocketError.SocketError,
        };
    }
}
