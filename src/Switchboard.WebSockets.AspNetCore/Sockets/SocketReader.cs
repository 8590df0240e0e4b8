using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;
using Microsoft.AspNetCore.Connections;

namespace Switchboard.WebSockets.AspNetCore.Sockets;

/// <summary>
/// The input side of a <see cref="SocketConnection"/>: a <see cref="PipeReader"/> that reads the socket itself, when
/// asked, instead of a receive loop filling a pipe.
/// </summary>
/// <remarks>
/// Readiness comes from <see cref="EpollReadiness"/> (edge-triggered), so a connection waiting for data holds no
/// buffer and no pending operation; a 4 KiB buffer is rented from the array pool only for the <c>recv</c>, and given
/// back as soon as the application has consumed what it holds. The socket stays registered while the application
/// works on what it read, so a peer that closes or resets is noticed (<see cref="SocketConnection.ConnectionClosed"/>)
/// without a read in progress. Data the application has not asked for stays in the kernel's socket buffer (TCP's own
/// flow control is the back pressure). Every state change happens under one lock: readiness arrives on the epoll
/// thread, reads and <see cref="CancelPendingRead"/> on the application's.
/// </remarks>
internal sealed class SocketReader : PipeReader, IValueTaskSource<ReadResult>, IReadinessListener
{
    /// <summary>The size of a receive buffer (as Kestrel's socket transport).</summary>
    internal const int BufferSize = 4096;

    /// <summary>A receive that leaves less free space than this in the last buffer rents a new one.</summary>
    private const int MinimumReceive = 512;

    private readonly SocketConnection _connection;
    private readonly Socket _socket;
    private readonly int _maxBuffered;
    private readonly Lock _gate;
    private ManualResetValueTaskSourceCore<ReadResult> _waiter;

    // Data received and not yet consumed: from _head[_headIndex] to _tail[_tail.Length].
    private Segment? _head;
    private int _headIndex;
    private Segment? _tail;

    // Segment objects are kept per thread, not per reader: steady reads allocate none, and an idle reader holds none.
    [ThreadStatic]
    private static Segment?[]? t_segments;
    [ThreadStatic]
    private static int t_segmentCount;

    private bool _unexamined;   // data arrived since the application last examined everything
    private bool _readable = true; // the socket may hold data: set by readiness, cleared by a recv that drained it
    private bool _closeSignaled; // readiness said the peer closed or failed: its end waits behind any data
    private bool _waiting;      // a ReadAsync waits for _waiter
    private bool _cancelNext;   // CancelPendingRead with no read waiting: the next read returns canceled
    private bool _ended;        // the peer's end of stream was read
    private bool _completed;    // the application completed this reader
    private bool _transportClosed; // the socket was closed here: reads fail (the error is made when one asks)
    private Exception? _error;

    public SocketReader(SocketConnection connection, Socket socket, int maxBuffered, Lock gate)
    {
        _connection = connection;
        _socket = socket;
        _maxBuffered = maxBuffered;
        _gate = gate; // the connection's: one lock object per connection
        _waiter.RunContinuationsAsynchronously = false; // a read completes on the thread that saw the socket readable
    }

    /// <summary>Bytes of receive buffers held (0 for a connection that has consumed what it read).</summary>
    internal int HeldBufferBytes
    {
        get
        {
            lock (_gate)
            {
                int n = 0;
                for (Segment? s = _head; s is not null; s = (Segment?)s.Next)
                {
                    n += s.Array.Length;
                }

                return n;
            }
        }
    }

    private long Buffered => _head is null ? 0 : _tail!.RunningIndex + _tail.Length - (_head.RunningIndex + _headIndex);

    private ReadOnlySequence<byte> Data() =>
        _head is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(_head, _headIndex, _tail!, _tail!.Length);

    private bool HasResult => _cancelNext || _unexamined || _ended || _error is not null || _transportClosed;

    public override bool TryRead(out ReadResult result)
    {
        lock (_gate)
        {
            ThrowIfCompleted();
            if (HasResult || _head is not null)
            {
                result = TakeResult();
                return true;
            }
        }

        result = default;
        return false;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.CanBeCanceled)
        {
            // Kestrel's HTTP layer and our engine cancel with CancelPendingRead; a token is honoured, at a cost.
            return ReadWithTokenAsync(cancellationToken);
        }

        lock (_gate)
        {
            ThrowIfCompleted();
            if (_waiting)
            {
                throw new InvalidOperationException("A read is already in progress.");
            }

            while (true)
            {
                if (HasResult)
                {
                    return new ValueTask<ReadResult>(TakeResult());
                }

                if (_readable)
                {
                    ReceiveLocked();
                    continue;
                }

                // Readiness (OnReadable) completes the read, on the epoll thread.
                _waiting = true;
                _waiter.Reset();
                return new ValueTask<ReadResult>(this, _waiter.Version);
            }
        }
    }

    private async ValueTask<ReadResult> ReadWithTokenAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        CancellationTokenRegistration reg = cancellationToken.UnsafeRegister(static s => ((SocketReader)s!).CancelPendingRead(), this);
        ReadResult result;
        try
        {
            result = await ReadAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            reg.Dispose(); // waits for a callback in progress
        }

        if (cancellationToken.IsCancellationRequested)
        {
            if (result.IsCanceled)
            {
                throw new OperationCanceledException(cancellationToken);
            }

            lock (_gate)
            {
                _cancelNext = false; // the token fired after the read completed: it must not cancel the next one
            }
        }

        return result;
    }

    /// <summary>The socket became readable (or the peer went away): complete a waiting read, or note the close.</summary>
    public void OnReadable(bool peerClosed)
    {
        ReadResult result = default;
        Exception? error = null;
        lock (_gate)
        {
            _readable = true;
            _closeSignaled |= peerClosed;
            if (_completed)
            {
                return;
            }

            if (!_waiting)
            {
                if (peerClosed)
                {
                    // Nobody reads now (e.g. a request is being handled): the connection's closed token fires at once.
                    _connection.OnPeerClosed(null);
                }

                return;
            }

            while (!HasResult)
            {
                if (!_readable)
                {
                    return; // readiness without data for us (another read took it): keep waiting
                }

                ReceiveLocked();
            }

            _waiting = false;
            if ((_error is not null || _transportClosed) && !_unexamined)
            {
                error = _error ?? ClosedError();
            }
            else
            {
                result = TakeResult();
            }
        }

        // Outside the lock: the application's continuation runs here.
        if (error is not null)
        {
            _waiter.SetException(error);
        }
        else
        {
            _waiter.SetResult(result);
        }
    }

    /// <summary>
    /// The socket is being closed here (abort, output completed, disposal): closing raises no readiness event, so a
    /// read that waits is failed now, as the runtime fails a pending receive on a closed socket, and later reads fail
    /// too (never reporting the end of stream that the shutdown itself produces).
    /// </summary>
    public void OnTransportClosed()
    {
        Exception error;
        bool nested = _gate.IsHeldByCurrentThread;
        lock (_gate)
        {
            if (_completed)
            {
                return; // the usual end: the application is done reading, and no error is made for nobody
            }

            _transportClosed = true;
            if (!_waiting || nested)
            {
                // Nobody waits (the next read fails), or this thread is inside a read or a readiness callback that
                // completes it on return.
                return;
            }

            _waiting = false;
            error = ClosedError();
        }

        _waiter.SetException(error);
    }

    private Exception ClosedError() => _error ??= _connection.TranslateError(new ObjectDisposedException(nameof(Socket)));

    /// <summary>
    /// One <c>recv</c> into the buffers' free space: data, the end of the stream, an error, or nothing yet. A receive
    /// that did not fill the space drained the socket: later data raises a new readiness event. Under the gate.
    /// </summary>
    private void ReceiveLocked()
    {
        _readable = false;
        if (_transportClosed)
        {
            return;
        }

        if (Buffered >= _maxBuffered)
        {
            // The application examined everything and consumed nothing past the bound: it would wait forever.
            var reason = new ConnectionAbortedException($"More than {_maxBuffered} bytes were received and not consumed.");
            SocketTransportMetrics.BoundExceeded();
            Fail(reason);
            _connection.Abort(reason);
            return;
        }

        Segment target = _tail is not null && _tail.Array.Length - _tail.Length >= MinimumReceive ? _tail : Append();
        Span<byte> free = target.Array.AsSpan(target.Length);
        int n;
        SocketError error;
        try
        {
            n = NonBlockingSocket.Receive(_socket, free, out error);
        }
        catch (ObjectDisposedException ex)
        {
            ReleaseIfEmpty();
            Fail(ex);
            return;
        }

        if (error == SocketError.WouldBlock)
        {
            ReleaseIfEmpty(); // readiness without data (e.g. another wake-up got there first)
            return;
        }

        if (error != SocketError.Success)
        {
            ReleaseIfEmpty();
            Fail(new SocketException((int)error));
            return;
        }

        if (n == 0)
        {
            ReleaseIfEmpty();
            _ended = true;
            _connection.OnPeerClosed(null);
            return;
        }

        target.Filled(target.Length + n);
        _unexamined = true;
        // A receive that filled the space may have left more; one that did not drained the socket, and new data will
        // raise a new event — but the end of the stream (or a reset) that was already signalled raises none again.
        _readable = n == free.Length || _closeSignaled;
    }

    private Segment Append()
    {
        Segment segment = RentSegment();
        segment.Rent(ArrayPool<byte>.Shared.Rent(BufferSize));
        SocketTransportMetrics.BufferRented(segment.Array.Length);
        if (_tail is null)
        {
            segment.SetRunningIndex(0);
            _head = _tail = segment;
            _headIndex = 0;
        }
        else
        {
            segment.SetRunningIndex(_tail.RunningIndex + _tail.Length);
            _tail.SetNext(segment);
            _tail = segment;
        }

        return segment;
    }

    private static void GiveBack(Segment segment)
    {
        byte[] array = segment.Return();
        SocketTransportMetrics.BufferReturned(array.Length);
        ArrayPool<byte>.Shared.Return(array);
    }

    private static Segment RentSegment()
    {
        Segment?[]? free = t_segments;
        if (free is not null && t_segmentCount > 0)
        {
            Segment segment = free[--t_segmentCount]!;
            free[t_segmentCount] = null;
            return segment;
        }

        return new Segment();
    }

    private static void ReturnSegment(Segment segment)
    {
        Segment?[] free = t_segments ??= new Segment?[16];
        if (t_segmentCount < free.Length)
        {
            free[t_segmentCount++] = segment;
        }
    }

    /// <summary>Gives the buffers back when nothing unconsumed is in them. Under the gate.</summary>
    private void ReleaseIfEmpty()
    {
        if (_head is not null && _head == _tail && _headIndex == _tail.Length)
        {
            ReleaseAll();
        }
    }

    private void ReleaseAll()
    {
        Segment? s = _head;
        _head = _tail = null;
        _headIndex = 0;
        while (s is not null)
        {
            Segment? next = (Segment?)s.Next;
            GiveBack(s);
            ReturnSegment(s);
            s = next;
        }
    }

    private void Fail(Exception ex)
    {
        _error ??= _connection.TranslateError(ex);
        _connection.OnPeerClosed(_error);
    }

    /// <summary>The result for the application. Under the gate.</summary>
    private ReadResult TakeResult()
    {
        if ((_error is not null || _transportClosed) && !_cancelNext && !_unexamined)
        {
            throw _error ?? ClosedError();
        }

        bool canceled = _cancelNext;
        _cancelNext = false;
        return new ReadResult(Data(), canceled, _ended);
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        lock (_gate)
        {
            ThrowIfCompleted();
            if (_head is null)
            {
                _unexamined = false;
                return;
            }

            // Consumed: drop whole buffers before it, then move within its buffer.
            var to = (Segment?)consumed.GetObject() ?? _head;
            int index = consumed.GetInteger();
            while (_head != to)
            {
                Segment done = _head!;
                _head = (Segment?)done.Next;
                GiveBack(done);
                ReturnSegment(done);
                if (_head is null)
                {
                    throw new InvalidOperationException("The consumed position is not in the buffer.");
                }
            }

            _headIndex = index;
            var examinedSegment = (Segment?)examined.GetObject();
            bool examinedAll = examinedSegment is null || (examinedSegment == _tail && examined.GetInteger() >= _tail!.Length);
            _unexamined = !examinedAll;
            ReleaseIfEmpty();
        }
    }

    public override void CancelPendingRead()
    {
        ReadResult result;
        lock (_gate)
        {
            _cancelNext = true;
            if (!_waiting)
            {
                return;
            }

            _waiting = false;
            result = TakeResult();
        }

        _waiter.SetResult(result);
    }

    public override void Complete(Exception? exception = null)
    {
        lock (_gate)
        {
            if (_completed)
            {
                return;
            }

            _completed = true;
            ReleaseAll();
        }

        _connection.OnInputCompleted();
    }

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("Reading is not allowed after the reader was completed.");
        }
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _waiter.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _waiter.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token,
        ValueTaskSourceOnCompletedFlags flags) => _waiter.OnCompleted(continuation, state, token, flags);

    /// <summary>A rented buffer in the chain of received data.</summary>
    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public byte[] Array { get; private set; } = [];

        public int Length { get; private set; }

        public void Rent(byte[] array)
        {
            Array = array;
            Length = 0;
            Memory = ReadOnlyMemory<byte>.Empty;
            Next = null;
        }

        public void Filled(int length)
        {
            Length = length;
            Memory = Array.AsMemory(0, length);
        }

        public byte[] Return()
        {
            byte[] array = Array;
            Array = [];
            Length = 0;
            Memory = default;
            Next = null;
            return array;
        }

        public void SetRunningIndex(long index) => RunningIndex = index;

        public void SetNext(Segment next) => Next = next;
    }
}
