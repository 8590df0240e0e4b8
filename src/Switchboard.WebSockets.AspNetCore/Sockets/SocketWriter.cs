using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Switchboard.WebSockets.AspNetCore.Sockets;

/// <summary>
/// The output side of a <see cref="SocketConnection"/>: a <see cref="PipeWriter"/> that collects what is written in
/// buffers rented from the array pool and sends them on <see cref="FlushAsync"/>, which completes when the kernel has
/// taken every byte — the back pressure is the socket's. Between flushes it holds no buffer.
/// </summary>
/// <remarks>
/// A WebSocket connection taken by the upgrade router never writes here: the engine sends on the socket itself. This
/// writer serves Kestrel's HTTP layer (pages, the API, a handshake it answers) and transports that wrap this one
/// (TLS). Completing it shuts the connection down, as Kestrel's socket transport does.
/// </remarks>
internal sealed class SocketWriter : PipeWriter
{
    private readonly SocketConnection _connection;
    private readonly Socket _socket;

    private byte[]?[] _buffers = [];  // grown on the first write: a WebSocket connection never writes here
    private int[] _lengths = [];
    private int _count;          // buffers in use; the last one is being written
    private long _unflushed;
    private bool _completed;
    private bool _flushing;      // a flush waits for the socket: its buffers are in use
    private volatile bool _cancelFlush;

    public SocketWriter(SocketConnection connection, Socket socket)
    {
        _connection = connection;
        _socket = socket;
    }

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _unflushed;

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        byte[] buffer = BufferFor(sizeHint);
        return buffer.AsMemory(_lengths[_count - 1]);
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        byte[] buffer = BufferFor(sizeHint);
        return buffer.AsSpan(_lengths[_count - 1]);
    }

    private byte[] BufferFor(int sizeHint)
    {
        if (_completed)
        {
            throw new InvalidOperationException("Writing is not allowed after the writer was completed.");
        }

        sizeHint = Math.Max(sizeHint, 1);
        if (_count > 0 && _buffers[_count - 1]!.Length - _lengths[_count - 1] >= sizeHint)
        {
            return _buffers[_count - 1]!;
        }

        if (_count == _buffers.Length)
        {
            Array.Resize(ref _buffers, Math.Max(2, _count * 2));
            Array.Resize(ref _lengths, Math.Max(2, _count * 2));
        }

        byte[] rented = ArrayPool<byte>.Shared.Rent(Math.Max(sizeHint, SocketReader.BufferSize));
        _buffers[_count] = rented;
        _lengths[_count] = 0;
        _count++;
        return rented;
    }

    public override void Advance(int bytes)
    {
        if (bytes == 0)
        {
            return;
        }

        if (_count == 0 || bytes < 0 || _lengths[_count - 1] + bytes > _buffers[_count - 1]!.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), "Advanced past the memory that was handed out.");
        }

        _lengths[_count - 1] += bytes;
        _unflushed += bytes;
    }

    public override void CancelPendingFlush() => _cancelFlush = true;

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_completed)
        {
            throw new InvalidOperationException("Writing is not allowed after the writer was completed.");
        }

        // Every buffer but the first goes out after an await; the first is tried at once without one.
        int i = 0;
        try
        {
            for (; i < _count; i++)
            {
                ValueTask sending = SocketSend.SendAllAsync(_socket, _buffers[i].AsMemory(0, _lengths[i]));
                if (!sending.IsCompletedSuccessfully)
                {
                    return FlushRestAsync(sending, i, cancellationToken);
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return new ValueTask<FlushResult>(Closed(ex));
        }

        Release();
        return new ValueTask<FlushResult>(Result());
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<FlushResult> FlushRestAsync(ValueTask sending, int i, CancellationToken cancellationToken)
    {
        _flushing = true;
        try
        {
            using CancellationTokenRegistration reg = cancellationToken.UnsafeRegister(static s => ((SocketWriter)s!).CancelPendingFlush(), this);
            await sending.ConfigureAwait(false);
            for (i++; i < _count; i++)
            {
                await SocketSend.SendAllAsync(_socket, _buffers[i].AsMemory(0, _lengths[i])).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            _flushing = false;
            return Closed(ex);
        }

        _flushing = false;
        Release();
        return Result();
    }

    private FlushResult Result()
    {
        bool canceled = _cancelFlush;
        _cancelFlush = false;
        return new FlushResult(canceled, isCompleted: false);
    }

    /// <summary>The peer is gone (or the connection was aborted): a flush reports completion, as a pipe's does.</summary>
    private FlushResult Closed(Exception ex)
    {
        Release();
        _connection.OnSendFailed(ex);
        return new FlushResult(isCanceled: false, isCompleted: true);
    }

    private void Release()
    {
        for (int i = 0; i < _count; i++)
        {
            ArrayPool<byte>.Shared.Return(_buffers[i]!);
            _buffers[i] = null;
        }

        _count = 0;
        _unflushed = 0;
    }

    public override void Complete(Exception? exception = null)
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        if (!_flushing)
        {
            // Callers flush before completing; anything left is sent if the socket takes it now, never waited for.
            if (NonBlockingSocket.NeverWaits(_socket))
            {
                for (int i = 0; i < _count; i++)
                {
                    NonBlockingSocket.Send(_socket, _buffers[i].AsSpan(0, _lengths[i]), out SocketError _);
                }
            }

            Release(); // a flush in progress gives its buffers back when its send ends (it fails once the socket closes)
        }

        _connection.OnOutputCompleted(exception);
    }
}
