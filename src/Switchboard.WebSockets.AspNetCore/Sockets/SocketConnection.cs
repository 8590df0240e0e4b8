using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Switchboard.WebSockets.AspNetCore.Sockets;

/// <summary>
/// An accepted TCP connection as Kestrel sees it: the socket, a <see cref="SocketReader"/> and a
/// <see cref="SocketWriter"/> over it (no pipes, no receive or send loop), and its features in fields
/// (<see cref="SocketConnection"/>'s other part).
/// </summary>
/// <remarks>
/// What one idle connection holds is the socket and its handle, a slot in <see cref="EpollReadiness"/>, this object,
/// its reader and writer; everything else (the connection id, the endpoints, the closed token, the
/// items) is made when first asked for. Shutting down follows Kestrel's socket transport: completing the output or
/// aborting shuts the socket down in both directions and closes it; the peer's end of stream, a reset or an abort
/// fires <see cref="ConnectionClosed"/> on the thread pool.
/// </remarks>
internal sealed partial class SocketConnection : ConnectionContext, IDuplexPipe
{
    private static long s_lastId = DateTime.UtcNow.Ticks;

    private readonly Socket _socket;
    private readonly SocketReader _reader;
    private readonly SocketWriter _writer;
    private readonly Lock _gate = new(); // the reader's too
    private IDuplexPipe _transport;
    private ulong _readiness;
    private string? _id;
    private IDictionary<object, object?>? _items;
    private EndPoint? _local;
    private EndPoint? _remote;
    private CancellationTokenSource? _closedSource;
    private CancellationToken? _closedOverride;
    private bool _closed;           // the peer is gone or the connection was shut down: the closed token fires
    private bool _shutDown;         // the socket is shut down and closed
    private ConnectionAbortedException? _abortReason;

    public SocketConnection(Socket socket, int maxReadBuffer, EndPoint? local = null)
    {
        _socket = socket;
        _local = local; // the listener's, when it is bound to one address: the same for every connection it accepts
        _reader = new SocketReader(this, socket, maxReadBuffer, _gate);
        _writer = new SocketWriter(this, socket);
        _transport = this;
    }

    /// <summary>The connection's registration in <see cref="EpollReadiness.Shared"/>.</summary>
    internal ulong ReadinessToken => _readiness;

    /// <summary>Registers the socket for readiness; the connection is then ready for Kestrel.</summary>
    internal void Start() => _readiness = EpollReadiness.Shared.Register(_socket, _reader);

    /// <summary>The reader (tests look at the buffers it holds).</summary>
    internal SocketReader Reader => _reader;

    PipeReader IDuplexPipe.Input => _reader;

    PipeWriter IDuplexPipe.Output => _writer;

    public override IDuplexPipe Transport
    {
        get => _transport;
        set => _transport = value;
    }

    public override string ConnectionId
    {
        get => _id ??= NewId();
        set => _id = value;
    }

    public override IFeatureCollection Features => this;

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override EndPoint? LocalEndPoint
    {
        get => _local ??= EndPointOf(static s => s.LocalEndPoint);
        set => _local = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => _remote ??= EndPointOf(static s => s.RemoteEndPoint);
        set => _remote = value;
    }

    public Socket Socket => _socket;

    public MemoryPool<byte> MemoryPool => MemoryPool<byte>.Shared;

    public override CancellationToken ConnectionClosed
    {
        get
        {
            if (_closedOverride is { } token)
            {
                return token;
            }

            lock (_gate)
            {
                if (_closedSource is null)
                {
                    if (_closed)
                    {
                        return new CancellationToken(canceled: true);
                    }

                    _closedSource = new CancellationTokenSource();
                }

                return _closedSource.Token;
            }
        }
        set => _closedOverride = value;
    }

    private EndPoint? EndPointOf(Func<Socket, EndPoint?> get)
    {
        try
        {
            return get(_socket);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return null;
        }
    }

    private static string NewId()
    {
        // Thirteen base-32 characters of a counter seeded from the clock, unique in the process and across restarts.
        const string digits = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
        long id = Interlocked.Increment(ref s_lastId);
        return string.Create(13, id, static (span, value) =>
        {
            for (int i = 12; i >= 0; i--)
            {
                span[i] = digits[(int)(value & 31)];
                value >>= 5;
            }
        });
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        lock (_gate)
        {
            _abortReason ??= abortReason;
        }

        ShutDown();
    }

    public override ValueTask DisposeAsync()
    {
        _reader.Complete();
        _writer.Complete();
        ShutDown();
        return ValueTask.CompletedTask;
    }

    /// <summary>The error a read reports for a failed socket operation (as Kestrel's socket transport reports it).</summary>
    internal Exception TranslateError(Exception ex)
    {
        lock (_gate)
        {
            if (_abortReason is not null || _shutDown)
            {
                return _abortReason ?? new ConnectionAbortedException("The connection was shut down.", ex);
            }
        }

        return ex switch
        {
            ConnectionAbortedException or ConnectionResetException or IOException => ex,
            ObjectDisposedException => new ConnectionAbortedException("The connection was closed.", ex),
            SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown } s =>
                new ConnectionResetException(s.Message, s),
            SocketException { SocketErrorCode: SocketError.OperationAborted or SocketError.Interrupted } s =>
                new ConnectionAbortedException(s.Message, s),
            _ => new IOException(ex.Message, ex),
        };
    }

    /// <summary>The peer closed or reset the connection (or it was shut down here): fire the closed token once.</summary>
    internal void OnPeerClosed(Exception? error)
    {
        CancellationTokenSource? source;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            source = _closedSource;
        }

        if (source is not null)
        {
            // As Kestrel does: the token's callbacks (request aborts, user code) run on the thread pool, not on the
            // socket's completion thread, which may be inside a read.
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Cancel(), source, preferLocal: false);
        }
    }

    internal void OnSendFailed(Exception error)
    {
        lock (_gate)
        {
            _abortReason ??= new ConnectionAbortedException("Sending failed: " + error.Message, error);
        }

        ShutDown();
    }

    internal void OnOutputCompleted(Exception? error) => ShutDown();

    internal void OnInputCompleted()
    {
        // Nothing to release: reading stops with the application. The socket closes when the output completes.
    }

    /// <summary>Shuts the socket down in both directions and closes it, once; a pending receive then fails.</summary>
    private void ShutDown()
    {
        lock (_gate)
        {
            if (_shutDown)
            {
                return;
            }

            _shutDown = true;
        }

        // First: a read must fail with the abort's reason, not see the end of stream that shutting down produces.
        _reader.OnTransportClosed();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already reset or closed by the peer: closing below is all that is left.
        }

        _socket.Dispose();
        EpollReadiness.Shared.Unregister(_readiness); // after closing: a late event finds no listener
        OnPeerClosed(null);
    }
}
