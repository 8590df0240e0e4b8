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
/// Readiness is awaited with a zero-byte receive, so a connection waiting for data holds no buffer; a 4 KiB buffer is
/// rented from the array pool only for the <c>recv</c> that follows, and given back as soon as the application has
/// consumed what it holds. One zero-byte receive stays armed while the application works on what it read, so a peer
/// that closes or resets is noticed (<see cref="SocketConnection.ConnectionClosed"/>) without a read in progress. Data
/// the application has not asked for stays in the kernel's socket buffer (TCP's own flow control is the back
/// pressure). Unlike <see cref="Pipe"/>, nothing here is thread-safe except what the contract requires across threads:
/// <see cref="CancelPendingRead"/> and the socket's completion.
/// </remarks>
internal sealed class SocketReader : PipeReader, IValueTaskSource<ReadResult>
{
    /// <summary>The size of a receive buffer (as Kestrel's socket transport).</summary>
    internal const int BufferSize = 4096;

    /// <summary>A receive that leaves less free space than this in the last buffer rents a new one.</summary>
    private const int MinimumReceive = 512;

    private readonly SocketConnection _connection;
    private readonly Socket _socket;
    private readonly int _maxBuffered;
    private readonly Lock _gate = new();
    private readonly Action _onReadable;
    private ManualResetValueTaskSourceCore<ReadResult> _waiter;
    private ValueTask<int> _readiness;

    // Data received and not yet consumed: from _head[_headIndex] to _tail[_tail.Length].
    private Segment? _head;
    private int _headIndex;
    private Segment? _tail;
    private Segment? _spare; // one segment object kept for the next buffer: steady reads allocate nothing

    private bool _unexamined;   // data arrived since the application last examined everything
    private bool _armed;        // a zero-byte receive is in flight
    private bool _readable;     // it completed: data, end of stream or an error waits in the socket
    private bool _waiting;      // a ReadAsync waits for _waiter
    private bool _cancelNext;   // CancelPendingRead with no read waiting: the next read returns canceled
    private bool _ended;        // the peer's end of stream was read
    private bool _completed;    // the application completed this reader
    private Exception? _error;

    public SocketReader(SocketConnection connection, Socket socket, int maxBuffered)
    {
        _connection = connection;
        _socket = socket;
        _maxBuffered = maxBuffered;
        _onReadable = OnReadable;
        _waiter.RunContinuationsAsynchronously = false; // a read completes on the socket's own completion thread
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

    private bool HasResult => _cancelNext || _unexamined || _ended || _error is not null;

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

                if (_armed || !ArmLocked())
                {
                    // The socket's readiness completes the read (OnReadable), on its own thread.
                    _waiting = true;
                    _waiter.Reset();
                    return new ValueTask<ReadResult>(this, _waiter.Version);
                }
            }
        }
    }

    private async ValueTask<ReadResult> ReadWithTokenAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using CancellationTokenRegistration reg = cancellationToken.UnsafeRegister(static s => ((SocketReader)s!).CancelPendingRead(), this);
        ReadResult result = await ReadAsync(CancellationToken.None).ConfigureAwait(false);
        if (result.IsCanceled && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancellationToken);
        }

        return result;
    }

    /// <summary>
    /// Starts a zero-byte receive. Under the gate, not armed. True when it finished at once (its outcome is then in
    /// _readable or _error); false when it is pending and <see cref="OnReadable"/> will follow.
    /// </summary>
    private bool ArmLocked()
    {
        ValueTask<int> readiness;
        try
        {
            readiness = _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
        }
        catch (Exception ex)
        {
            Fail(ex);
            return true;
        }

        if (readiness.IsCompleted)
        {
            Settle(readiness);
            return true;
        }

        _armed = true;
        _readiness = readiness;
        // Registered without a scheduling context; a registration after completion is run on the thread pool, never
        // here under the gate.
        readiness.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onReadable);
        return false;
    }

    /// <summary>The outcome of a finished zero-byte receive. Under the gate.</summary>
    private void Settle(ValueTask<int> readiness)
    {
        try
        {
            readiness.GetAwaiter().GetResult();
            _readable = true;
        }
        catch (Exception ex)
        {
            Fail(ex);
        }
    }

    /// <summary>The armed zero-byte receive finished: complete a waiting read, or note a peer that went away.</summary>
    private void OnReadable()
    {
        ReadResult result = default;
        Exception? error = null;
        bool complete = false;
        lock (_gate)
        {
            _armed = false;
            ValueTask<int> readiness = _readiness;
            _readiness = default;
            Settle(readiness);
            if (_waiting)
            {
                while (!HasResult)
                {
                    if (_readable)
                    {
                        ReceiveLocked();
                    }
                    else if (!ArmLocked())
                    {
                        return; // readiness without data: wait again
                    }
                }

                _waiting = false;
                complete = true;
                if (_error is not null && !_unexamined)
                {
                    error = _error;
                }
                else
                {
                    result = TakeResult();
                }
            }
            else if (_readable && _head is null && !_completed)
            {
                // Nobody reads: learn whether this is the end of the stream, so the connection's closed token fires.
                Span<byte> one = stackalloc byte[1];
                int n = _socket.Receive(one, SocketFlags.Peek, out SocketError peekError);
                if (peekError is not (SocketError.Success or SocketError.WouldBlock) || (peekError == SocketError.Success && n == 0))
                {
                    _connection.OnPeerClosed(null);
                }
            }
        }

        // Outside the gate: the application's continuation runs here, on the socket's completion thread.
        if (complete)
        {
            if (error is not null)
            {
                _waiter.SetException(error);
            }
            else
            {
                _waiter.SetResult(result);
            }
        }
    }

    /// <summary>
    /// One <c>recv</c> into the buffers' free space: data, the end of the stream, an error, or nothing yet. After data
    /// the zero-byte receive is armed again, so a close or reset is seen while the application works. Under the gate.
    /// </summary>
    private void ReceiveLocked()
    {
        _readable = false;
        if (Buffered >= _maxBuffered)
        {
            // The application examined everything and consumed nothing past the bound: it would wait forever.
            var reason = new ConnectionAbortedException($"More than {_maxBuffered} bytes were received and not consumed.");
            Fail(reason);
            _connection.Abort(reason);
            return;
        }

        Segment target = _tail is not null && _tail.Array.Length - _tail.Length >= MinimumReceive ? _tail : Append();
        int n = _socket.Receive(target.Array.AsSpan(target.Length), SocketFlags.None, out SocketError error);
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
        if (!_armed && !_completed)
        {
            ArmLocked();
        }
    }

    private Segment Append()
    {
        Segment segment = _spare ?? new Segment();
        _spare = null;
        segment.Rent(ArrayPool<byte>.Shared.Rent(BufferSize));
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
            ArrayPool<byte>.Shared.Return(s.Return());
            _spare = s;
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
        if (_error is not null && !_cancelNext && !_unexamined)
        {
            throw _error;
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
                ArrayPool<byte>.Shared.Return(done.Return());
                _spare = done;
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
            _spare = null;
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
