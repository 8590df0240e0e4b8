using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Switchboard.WebSockets.AspNetCore.Sockets;

/// <summary>Told when its socket has something to read: data, the end of the stream, or an error.</summary>
internal interface IReadinessListener
{
    /// <summary>The socket became readable. <paramref name="peerClosed"/>: the peer shut its side down, or the connection failed.</summary>
    void OnReadable(bool peerClosed);
}

/// <summary>
/// One Linux epoll set, edge-triggered, and the thread that waits on it: the transport's connections learn here that
/// their socket is readable. This replaces a zero-byte receive per connection (the runtime's socket engine keeps an
/// operation object, its callback and a queue entry per pending receive, about 550 bytes per idle connection): what a
/// connection registers here is a slot in a table.
/// </summary>
/// <remarks>
/// Edge-triggered: an event is reported each time data arrives after the last report, so a reader that has not read
/// until "would block" keeps its own note that the socket may still be readable (<see cref="SocketReader"/>).
/// Events are matched to listeners by a token (slot and generation), never by descriptor: an event that arrives after
/// its connection was unregistered, or whose descriptor number was reused, finds another generation and is dropped.
/// A descriptor leaves the set when it is closed. Listeners run on the epoll thread when the process asks the
/// runtime's sockets for inline completions (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>, as
/// <c>switchboard serve</c> does), and on the thread pool otherwise.
/// </remarks>
internal sealed unsafe partial class EpollReadiness
{
    private const int EpollCtlAdd = 1;
    private const uint EpollIn = 0x001;
    private const uint EpollErr = 0x008;
    private const uint EpollHup = 0x010;
    private const uint EpollRdHup = 0x2000;
    private const uint EpollEt = 0x8000_0000;
    private const int EpollCloexec = 0x80000;
    private const int EventsPerWait = 256;

    private static readonly Lock s_sharedGate = new();
    private static EpollReadiness? s_shared;

    private readonly int _epoll;
    private readonly bool _inline;
    private readonly Lock _gate = new();
    private IReadinessListener?[] _listeners = new IReadinessListener?[256];
    private uint[] _generations = new uint[256];
    private int[] _free = new int[256];
    private int _freeCount;
    private int _used;

    // struct epoll_event is packed on x86-64 (12 bytes, data at offset 4); naturally aligned elsewhere (16, at 8).
    private static readonly int s_eventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    private static readonly int s_dataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    private EpollReadiness()
    {
        _epoll = epoll_create1(EpollCloexec);
        if (_epoll < 0)
        {
            throw new SocketException(Marshal.GetLastPInvokeError());
        }

        _inline = Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") == "1";
        var thread = new Thread(Run) { IsBackground = true, Name = "Switchboard epoll" };
        thread.UnsafeStart();
    }

    private const string Libc = "libc.so.6";

    private static readonly Lazy<bool> s_supported = new(() => OperatingSystem.IsLinux() && NativeLibrary.TryLoad(Libc, out _));

    /// <summary>True where this works: Linux with glibc. Elsewhere the transport stands aside for Kestrel's.</summary>
    public static bool IsSupported => s_supported.Value;

    /// <summary>The process's epoll set, made on first use (one thread waits on it for every listener).</summary>
    public static EpollReadiness Shared
    {
        get
        {
            lock (s_sharedGate)
            {
                return s_shared ??= new EpollReadiness();
            }
        }
    }

    /// <summary>True while <paramref name="token"/>'s listener gets events.</summary>
    internal bool IsRegistered(ulong token) => Find(token) is not null;

    /// <summary>Adds the socket; events go to <paramref name="listener"/> until <see cref="Unregister"/>.</summary>
    public ulong Register(Socket socket, IReadinessListener listener)
    {
        ulong token;
        int slot;
        lock (_gate)
        {
            if (_freeCount > 0)
            {
                slot = _free[--_freeCount];
            }
            else
            {
                if (_used == _listeners.Length)
                {
                    Array.Resize(ref _listeners, _used * 2);
                    Array.Resize(ref _generations, _used * 2);
                    Array.Resize(ref _free, _used * 2);
                }

                slot = _used++;
            }

            _listeners[slot] = listener;
            token = ((ulong)_generations[slot] << 32) | (uint)slot;
        }

        SafeSocketHandle handle = socket.SafeHandle;
        bool added = false;
        int result;
        try
        {
            handle.DangerousAddRef(ref added);
            byte* ev = stackalloc byte[16];
            *(uint*)ev = EpollIn | EpollRdHup | EpollEt;
            *(ulong*)(ev + s_dataOffset) = token;
            result = epoll_ctl(_epoll, EpollCtlAdd, (int)handle.DangerousGetHandle(), ev);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }

        if (result != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Unregister(token);
            throw new SocketException(errno);
        }

        return token;
    }

    /// <summary>
    /// Frees the listener's slot; later events for it are dropped. Call after the socket is closed (closing removes the
    /// descriptor from the set; no system call is needed here).
    /// </summary>
    public void Unregister(ulong token)
    {
        int slot = (int)(uint)token;
        lock (_gate)
        {
            if (slot < _used && _generations[slot] == (uint)(token >> 32) && _listeners[slot] is not null)
            {
                _listeners[slot] = null;
                _generations[slot]++;
                _free[_freeCount++] = slot;
            }
        }
    }

    private IReadinessListener? Find(ulong token)
    {
        int slot = (int)(uint)token;
        lock (_gate)
        {
            return slot < _used && _generations[slot] == (uint)(token >> 32) ? _listeners[slot] : null;
        }
    }

    private void Run()
    {
        byte* events = (byte*)NativeMemory.Alloc((nuint)(EventsPerWait * s_eventSize));
        while (true)
        {
            int n = epoll_wait(_epoll, events, EventsPerWait, -1);
            if (n < 0)
            {
                continue; // EINTR (a signal): wait again
            }

            for (int i = 0; i < n; i++)
            {
                byte* ev = events + (i * s_eventSize);
                uint flags = *(uint*)ev;
                IReadinessListener? listener = Find(*(ulong*)(ev + s_dataOffset));
                if (listener is null)
                {
                    continue;
                }

                bool closed = (flags & (EpollRdHup | EpollHup | EpollErr)) != 0;
                try
                {
                    if (_inline)
                    {
                        listener.OnReadable(closed);
                    }
                    else
                    {
                        ThreadPool.UnsafeQueueUserWorkItem(static s => s.Listener.OnReadable(s.Closed), (Listener: listener, Closed: closed), preferLocal: false);
                    }
                }
                catch (Exception ex)
                {
                    // A listener's failure is its connection's, never the loop's: every other connection depends on it.
                    System.Diagnostics.Trace.TraceError("Switchboard epoll listener failed: " + ex);
                }
            }
        }
    }

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, void* ev);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int epoll_wait(int epfd, void* events, int maxevents, int timeout);
}
