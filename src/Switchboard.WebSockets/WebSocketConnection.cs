using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Switchboard.Protocol;
using Switchboard.Protocol.Extensions;
using Switchboard.Protocol.Handshake;

namespace Switchboard.WebSockets;

/// <summary>
/// One WebSocket connection on an <see cref="IDuplexPipe"/>, after the opening handshake.
/// <para>
/// Receiving: one read loop (<see cref="RunAsync"/>) decodes frames in order and awaits the handler for each
/// message; pings are answered, close frames answered, violations fail the connection with their close code.
/// </para>
/// <para>
/// Sending: every send only enqueues (lock-free) and returns a <see cref="SendResult"/>; one writer per
/// connection, scheduled on the thread pool only while there is something to write, drains everything
/// queued and flushes once per batch. Sends from any number of threads are safe and keep each thread's order.
/// </para>
/// </summary>
public sealed partial class WebSocketConnection : IThreadPoolWorkItem
{
    private const int FlushThreshold = 64 * 1024;
    private static long s_nextId;

    private readonly IDuplexPipe _transport;
    private SocketSendBuffer? _sendBuffer; // writer only, direct socket writes: the batch being written
    private readonly Action? _abortTransport;
    private readonly WebSocketConnectionOptions _options;
    private readonly WebSocketHeartbeat _heartbeat;
    private FrameDecoder? _decoder; // read loop only; created when the first bytes arrive
    private readonly ILogger _logger;
    private readonly IWebSocketRandom? _random;
    private ConcurrentQueue<OutboundFrame>? _queueStorage; // created on the first send: an idle connection holds none
    private TaskCompletionSource? _writerDoneStorage; // created when the connection ends: an open connection holds none
    private TaskCompletionSource<WebSocketCloseStatus>? _completionStorage; // created when someone asks, or at the end
    private Closing? _closingStorage; // created when the connection starts to end: an open connection holds none
    private volatile bool _ended;

    [ThreadStatic]
    private static WebSocketConnection? t_readLoopOwner; // set while this thread runs a connection's read loop synchronously

    private long _queuedBytes;
    private int _writerScheduled;
    private bool _writerDeferred; // read loop only: a send made by the read loop itself; write at the end of the batch
    private TaskCompletionSource? _drained;
    private volatile bool _discardData;
    private volatile bool _completeOutput;
    private bool _closeWritten;      // writer only
    private byte[]? _maskKeys;       // writer only (client role)
    private int _maskKeyIndex;       // writer only

    private int _state = (int)WebSocketState.Connecting;
    private int _running;
    private int _aborted;

    private long _lastReceiveMs;
    private long _pingSentMs = -1;

    private bool _handshakeComplete;
    private bool _stopParsing;

    private PendingPongs? _pong; // created by the first ping: an idle connection holds none

    private byte[]? _messageBuffer;
    private int _messageLength;
    private bool _assembling;
    private MessageType _assemblingType;
    private Channel<ReceivedMessage>? _receiveChannel;

    // permessage-deflate (RFC 7692), when negotiated. "Send" is this side's compressor, "receive" the peer's.
    private readonly bool _sendCompressed;
    private readonly bool _sendResetContext;
    private readonly int _sendWindowBits;
    private readonly bool _receiveResetContext;
    private DeflateCompressor? _compressor;     // writer only: our context, kept between messages (context takeover)
    private DeflateDecompressor? _decompressor; // read loop only: rented per message, or kept with context takeover
    private Utf8Validator _inflatedUtf8;
    private long _inflatedLength;

    /// <summary>
    /// Wraps an upgraded transport. <paramref name="abortTransport"/> must tear the underlying connection down
    /// at once (used for timeouts); the connection completes both pipe ends itself when it finishes.
    /// </summary>
    public WebSocketConnection(IDuplexPipe transport, WebSocketRole role, WebSocketConnectionOptions? options = null,
        string? subProtocol = null, Action? abortTransport = null, IWebSocketRandom? random = null, DeflateParameters? compression = null)
    {
        _transport = transport;
        _abortTransport = abortTransport;
        _options = options ?? WebSocketConnectionOptions.Default;
        _heartbeat = _options.Heartbeat ?? WebSocketHeartbeat.Shared;
        _logger = _options.Logger ?? NullLogger.Instance;
        Role = role;
        SubProtocol = subProtocol;
        Id = Interlocked.Increment(ref s_nextId);
        Compression = compression;
        if (compression is not null)
        {
            bool server = role == WebSocketRole.Server;
            _sendResetContext = server ? compression.ServerNoContextTakeover : compression.ClientNoContextTakeover;
            _sendWindowBits = server ? compression.ServerMaxWindowBits : compression.ClientMaxWindowBits;
            _receiveResetContext = server ? compression.ClientNoContextTakeover : compression.ServerNoContextTakeover;
            // zlib cannot compress with a raw 8-bit window; sending uncompressed is always allowed (§6).
            _sendCompressed = _sendWindowBits >= 9;
        }

        if (role == WebSocketRole.Client)
        {
            _random = random ?? CryptoWebSocketRandom.Instance;
        }
    }

    /// <summary>How the connection is ending: written by the read loop, the heartbeat and aborts, read at the end.</summary>
    private sealed class Closing
    {
        public WebSocketCloseStatus FinalStatus;
        public string? AbortReason;
        public long DeadlineMs = long.MaxValue; // the heartbeat aborts past it (closing handshake timeout)
        public bool FrameReceived;
        public ushort ReceivedCode;
        public string ReceivedReason = string.Empty;
        public WebSocketError? Error;
    }

    private Closing Ending =>
        Volatile.Read(ref _closingStorage) ?? Interlocked.CompareExchange(ref _closingStorage, new Closing(), null) ?? _closingStorage!;

    private TaskCompletionSource WriterDone =>
        Volatile.Read(ref _writerDoneStorage) ?? Interlocked.CompareExchange(ref _writerDoneStorage, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null) ?? _writerDoneStorage!;

    private ConcurrentQueue<OutboundFrame> Queue =>
        Volatile.Read(ref _queueStorage) ?? Interlocked.CompareExchange(ref _queueStorage, new ConcurrentQueue<OutboundFrame>(), null) ?? _queueStorage!;

    /// <summary>A process-unique id.</summary>
    public long Id { get; }

    /// <summary>Server or client side.</summary>
    public WebSocketRole Role { get; }

    /// <summary>The subprotocol agreed in the handshake, or null.</summary>
    public string? SubProtocol { get; }

    /// <summary>The permessage-deflate parameters agreed in the handshake, or null when messages are never compressed.</summary>
    public DeflateParameters? Compression { get; }

    /// <summary>The current state.</summary>
    public WebSocketState State => (WebSocketState)Volatile.Read(ref _state);

    /// <summary>Told when the connection has ended (a host's set of open connections), before <see cref="Completion"/> completes.</summary>
    internal IConnectionTracker? Tracker { get; set; }

    /// <summary>
    /// The connected socket under <see cref="_transport"/> when nothing sits between them (no TLS): the writer then
    /// sends each batch with one <c>send</c> on it instead of going through the transport's output pipe. The pipe's
    /// output side is then never written, only completed at the end.
    /// </summary>
    internal Socket? DirectSocket { get; init; }

    /// <summary>Free for the application's own per-connection state.</summary>
    public object? UserState { get; set; }

    /// <summary>Bytes waiting in the outbound queue.</summary>
    public long QueuedBytes => Volatile.Read(ref _queuedBytes);

    /// <summary>
    /// Completes when everything queued so far has been handed to the transport (the queue is empty), or when the
    /// connection has ended. For producers that pace themselves, e.g. a history replay.
    /// </summary>
    public Task WhenOutboundDrainedAsync()
    {
        if (Volatile.Read(ref _queuedBytes) <= 0 || _ended)
        {
            return Task.CompletedTask;
        }

        TaskCompletionSource tcs = Volatile.Read(ref _drained) ?? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs = Interlocked.CompareExchange(ref _drained, tcs, null) ?? tcs;
        if (Volatile.Read(ref _queuedBytes) <= 0 || _ended)
        {
            SignalDrained(); // the writer may have emptied the queue before it could see the waiter
        }

        ScheduleWriter();
        return tcs.Task;
    }

    private void SignalDrained() => Interlocked.Exchange(ref _drained, null)?.TrySetResult();

    /// <summary>Completes with the close status when the connection has ended.</summary>
    public Task<WebSocketCloseStatus> Completion
    {
        get
        {
            // Lazily created: most server connections are never asked, and an idle connection should hold little.
            TaskCompletionSource<WebSocketCloseStatus> tcs = Volatile.Read(ref _completionStorage)
                ?? Interlocked.CompareExchange(ref _completionStorage, new(TaskCreationOptions.RunContinuationsAsynchronously), null)
                ?? _completionStorage!;
            if (_ended)
            {
                tcs.TrySetResult(Ending.FinalStatus); // ended before this TCS existed (or raced with the end: same result)
            }

            return tcs.Task;
        }
    }

    // ------------------------------------------------------------------ sending

    /// <summary>Queues a prepared frame: the same bytes are shared with every other connection it is sent to.</summary>
    public SendResult Send(PreparedFrame frame) =>
        Enqueue(new OutboundFrame(frame.Buffer, frame.HeaderStart, frame.PayloadLength, frame.Opcode, fin: true, pooled: false, frame.Compressible, frame));

    /// <summary>
    /// Queues a prepared frame only if the outbound queue holds at most <paramref name="softLimitBytes"/>; otherwise
    /// returns <see cref="SendResult.QueueFull"/> and leaves the connection alone (no overflow policy applies). For
    /// traffic the sender can recover later, e.g. a room's live stream that a lagging member re-reads from history.
    /// </summary>
    public SendResult TrySend(PreparedFrame frame, long softLimitBytes)
    {
        if (Volatile.Read(ref _queuedBytes) > softLimitBytes)
        {
            return IsOpen ? SendResult.QueueFull : SendResult.Closed;
        }

        return Send(frame);
    }

    /// <summary>Queues a text message. <paramref name="compress"/> false keeps it uncompressed (e.g. it carries a secret).</summary>
    public SendResult SendText(ReadOnlySpan<char> text, bool compress = true) => IsOpen ? Enqueue(OutboundFrame.RentText(text, compress)) : SendResult.Closed;

    /// <summary>Queues a text message. <paramref name="compress"/> false keeps it uncompressed (e.g. it carries a secret).</summary>
    public SendResult SendText(string text, bool compress = true) => SendText(text.AsSpan(), compress);

    /// <summary>Queues a message. Text payloads must be valid UTF-8. <paramref name="compress"/> false keeps it uncompressed.</summary>
    public SendResult Send(MessageType type, ReadOnlySpan<byte> payload, bool compress = true) =>
        IsOpen ? Enqueue(OutboundFrame.Rent((Opcode)type, payload, fin: true, compress)) : SendResult.Closed;

    /// <summary>Queues a message held in a sequence (e.g. a received message, to echo it).</summary>
    public SendResult Send(MessageType type, ReadOnlySequence<byte> payload, bool compress = true)
    {
        if (payload.IsSingleSegment)
        {
            return Send(type, payload.FirstSpan, compress);
        }

        byte[] tmp = ArrayPool<byte>.Shared.Rent((int)payload.Length);
        try
        {
            payload.CopyTo(tmp);
            return Send(type, tmp.AsSpan(0, (int)payload.Length), compress);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(tmp);
        }
    }

    /// <summary>
    /// Queues one fragment of a message (RFC 6455 §5.4): the first carries the type, the rest are
    /// continuations; <paramref name="endOfMessage"/> sets FIN. The caller must not send other data messages
    /// on this connection until the fragmented one is finished.
    /// </summary>
    public SendResult SendFragment(MessageType type, ReadOnlySpan<byte> payload, bool isFirst, bool endOfMessage) =>
        IsOpen ? Enqueue(OutboundFrame.Rent(isFirst ? (Opcode)type : Opcode.Continuation, payload, endOfMessage)) : SendResult.Closed;

    /// <summary>Sends a ping (at most 125 bytes of payload).</summary>
    public SendResult SendPing(ReadOnlySpan<byte> payload = default)
    {
        if (payload.Length > 125)
        {
            throw new ArgumentException("A ping payload is at most 125 bytes (RFC 6455 §5.5).", nameof(payload));
        }

        return IsOpen ? EnqueueControl(OutboundFrame.Rent(Opcode.Ping, payload, fin: true)) : SendResult.Closed;
    }

    /// <summary>
    /// Starts the closing handshake (RFC 6455 §7.1.2): queues a close frame behind the messages already queued;
    /// nothing more is sent after it. Does nothing if closing already started.
    /// </summary>
    public void Close(ushort code = WebSocketCloseCode.NormalClosure, string? reason = null)
    {
        ClosePayload.Validate(code, reason);
        StartClose(code, reason);
    }

    /// <summary>Closes and waits until the connection has ended.</summary>
    public async Task<WebSocketCloseStatus> CloseAsync(ushort code = WebSocketCloseCode.NormalClosure, string? reason = null, CancellationToken cancellationToken = default)
    {
        Close(code, reason);
        return await Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Tears the connection down at once, without a closing handshake.</summary>
    public void Abort() => Abort("Aborted by the application");

    private bool IsOpen => Volatile.Read(ref _state) == (int)WebSocketState.Open;

    private SendResult Enqueue(OutboundFrame frame)
    {
        if (!IsOpen)
        {
            frame.Release();
            return SendResult.Closed;
        }

        long total = Interlocked.Add(ref _queuedBytes, frame.Cost);
        if (total > _options.MaxOutboundQueueBytes && total != frame.Cost)
        {
            Interlocked.Add(ref _queuedBytes, -frame.Cost);
            frame.Release();
            if (_options.OverflowPolicy == OutboundOverflowPolicy.Reject)
            {
                return SendResult.QueueFull;
            }

            Log.OutboundOverflow(_logger, Id, total);
            WebSocketMetrics.SlowConsumer();
            _discardData = true;
            StartClose(WebSocketCloseCode.PolicyViolation, "Outbound queue limit exceeded");
            return SendResult.Closed;
        }

        Queue.Enqueue(frame);
        ScheduleWriter();
        return SendResult.Enqueued;
    }

    private SendResult EnqueueControl(OutboundFrame frame)
    {
        Interlocked.Add(ref _queuedBytes, frame.Cost);
        Queue.Enqueue(frame);
        ScheduleWriter();
        return SendResult.Enqueued;
    }

    /// <summary>
    /// Answers a ping with its own pong (RFC 6455 §5.5.2), in order, as every major implementation does. The pongs not
    /// yet written are bounded (<see cref="PendingPongs.Max"/>): past that, a new ping replaces the payload of the last
    /// pending pong instead of adding one (§5.5.3 allows answering only the most recent ping), so a ping flood from a
    /// peer that does not read costs at most Max × 125 bytes.
    /// </summary>
    private void QueuePong(ReadOnlySequence<byte> payload)
    {
        // A lock, not lock-free: this is the control path (rare), and the payload copy must be atomic with the count.
        PendingPongs pongs = Volatile.Read(ref _pong) ?? Interlocked.CompareExchange(ref _pong, new PendingPongs(), null) ?? _pong!;
        lock (pongs)
        {
            if (!pongs.TryAdd(payload))
            {
                return; // full: the last pending pong now carries this ping's payload
            }
        }

        EnqueueControl(new OutboundFrame(Array.Empty<byte>(), 0, 0, Opcode.Pong, fin: true, pooled: false));
    }

    private int WritePendingPong(IBufferWriter<byte> output)
    {
        Span<byte> payload = stackalloc byte[125];
        int length;
        PendingPongs pongs = Volatile.Read(ref _pong)!;
        lock (pongs)
        {
            length = pongs.TakeFirst(payload);
        }

        bool masked = Role == WebSocketRole.Client;
        FrameEncoder.WriteFrame(output, true, 0, Opcode.Pong, payload[..length], masked, masked ? NextMaskKey() : 0);
        return FrameHeader.GetEncodedLength(length, masked) + length;
    }

    private bool StartClose(ushort code, string? reason)
    {
        if (Interlocked.CompareExchange(ref _state, (int)WebSocketState.CloseSent, (int)WebSocketState.Open) != (int)WebSocketState.Open)
        {
            return false;
        }

        StartCloseTimer();
        EnqueueCloseFrame(code, reason);
        return true;
    }

    /// <summary>The closing handshake must finish within <see cref="WebSocketConnectionOptions.CloseTimeout"/> from now (the heartbeat aborts after).</summary>
    private void StartCloseTimer() =>
        Volatile.Write(ref Ending.DeadlineMs, _heartbeat.NowMs + (long)_options.CloseTimeout.TotalMilliseconds);

    private void EnqueueCloseFrame(ushort code, string? reason)
    {
        Span<byte> body = stackalloc byte[125];
        int n = ClosePayload.Write(body, code, reason);
        EnqueueControl(OutboundFrame.Rent(Opcode.Close, body[..n], fin: true));
    }

    private void ScheduleWriter()
    {
        if (Interlocked.CompareExchange(ref _writerScheduled, 1, 0) == 0)
        {
            if (t_readLoopOwner == this)
            {
                // Sent by this connection's own read loop (an echo, a reply, a pong): the read loop writes it when it has
                // decoded everything it holds, one flush for the batch and no thread hop.
                _writerDeferred = true;
                return;
            }

            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    private void RunDeferredWriter()
    {
        if (_writerDeferred)
        {
            _writerDeferred = false;
            _ = WriterLoopAsync(); // runs here until its first incomplete await, then carries on by itself
        }
    }

    void IThreadPoolWorkItem.Execute() => _ = WriterLoopAsync();

    private async Task WriterLoopAsync()
    {
        PipeWriter? pipe = DirectSocket is null ? _transport.Output : null;
        IBufferWriter<byte> output = pipe is not null ? pipe : _sendBuffer ??= new SocketSendBuffer();
        try
        {
            while (true)
            {
                long unflushed = 0, written = 0;
                int dataFrames = 0;
                while (Queue.TryDequeue(out OutboundFrame frame))
                {
                    Interlocked.Add(ref _queuedBytes, -frame.Cost);
                    try
                    {
                        if (_closeWritten || (_discardData && !frame.Opcode.IsControl()))
                        {
                            continue; // nothing is sent after a close frame (RFC 6455 §5.5.1)
                        }

                        written += WriteFrame(output, frame);
                        unflushed += frame.Cost;
                        dataFrames += frame.Opcode.IsControl() ? 0 : 1;
                        _closeWritten = frame.Opcode == Opcode.Close;
                    }
                    finally
                    {
                        frame.Release();
                    }

                    if (unflushed >= FlushThreshold)
                    {
                        unflushed = 0;
                        WebSocketMetrics.Sent(written, dataFrames);
                        written = 0;
                        dataFrames = 0;
                        await FlushAsync(pipe).ConfigureAwait(false);
                    }
                }

                if (unflushed > 0 || dataFrames > 0)
                {
                    WebSocketMetrics.Sent(written, dataFrames);
                    await FlushAsync(pipe).ConfigureAwait(false);
                }

                _sendBuffer?.Release(); // the batch is out: an idle connection holds no send buffer

                if (_closeWritten)
                {
                    // Our close went out after the peer's: the handshake is done (RFC 6455 §7.1.4).
                    Interlocked.CompareExchange(ref _state, (int)WebSocketState.Closed, (int)WebSocketState.CloseReceived);
                }

                if (_completeOutput)
                {
                    if (!Queue.IsEmpty)
                    {
                        continue; // e.g. a close frame queued while the last flush was in progress: write it first
                    }

                    await _transport.Output.CompleteAsync().ConfigureAwait(false);
                    DrainQueue();
                    DisposeCompressor();
                    WriterDone.TrySetResult();
                    return; // _writerScheduled stays 1: the writer never runs again
                }

                if (Queue.IsEmpty)
                {
                    SignalDrained();
                }

                // A full fence, not Volatile.Write: the store must not be reordered after the IsEmpty load below, or a
                // sender that enqueues in between sees the writer still scheduled and nobody writes its frame.
                Interlocked.Exchange(ref _writerScheduled, 0);
                if ((Queue.IsEmpty && !_completeOutput) || Interlocked.CompareExchange(ref _writerScheduled, 1, 0) != 0)
                {
                    return;
                }
            }
        }
        catch (Exception ex)
        {
            Log.WriteFailed(_logger, Id, ex.Message);
            try
            {
                await _transport.Output.CompleteAsync(ex).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The transport is already gone.
            }

            DrainQueue();
            DisposeCompressor();
            _sendBuffer?.Release();
            Abort("Write failed: " + ex.Message);
            WriterDone.TrySetResult();
        }
    }

    /// <summary>Hands the batch to the transport: the pipe's flush, or one <c>send</c> on the socket.</summary>
    private async ValueTask FlushAsync(PipeWriter? pipe)
    {
        if (pipe is not null)
        {
            FlushResult r = await pipe.FlushAsync().ConfigureAwait(false);
            if (r.IsCompleted || r.IsCanceled)
            {
                throw new IOException("The transport closed while writing.");
            }

            return;
        }

        await SendAllAsync(DirectSocket!, _sendBuffer!.Written).ConfigureAwait(false);
        _sendBuffer.Reset();
    }

    /// <summary>
    /// Sends all of <paramref name="data"/>. On a non-blocking socket it first tries one plain <c>send</c>, which
    /// finishes the job whenever the socket buffer has room (the common case) and creates no per-socket state; only
    /// what did not fit waits in <see cref="Socket.SendAsync(ReadOnlyMemory{byte}, SocketFlags, CancellationToken)"/>
    /// (which keeps an operation object on the socket from then on: idle connections that never filled their socket
    /// buffer hold none).
    /// </summary>
    internal static ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        if (!socket.Blocking)
        {
            int sent = socket.Send(data.Span, SocketFlags.None, out SocketError error);
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

    private void DrainQueue()
    {
        while (Queue.TryDequeue(out OutboundFrame frame))
        {
            Interlocked.Add(ref _queuedBytes, -frame.Cost);
            frame.Release();
        }
    }

    /// <summary>Writes one queued frame; returns the bytes written.</summary>
    private int WriteFrame(IBufferWriter<byte> output, in OutboundFrame frame)
    {
        if (frame.Opcode == Opcode.Pong)
        {
            return WritePendingPong(output);
        }

        if (_sendCompressed && frame.Compress && frame.PayloadLength >= _options.CompressionThreshold)
        {
            int compressed = WriteCompressedFrame(output, frame);
            if (compressed >= 0)
            {
                return compressed;
            }
        }

        if (Role == WebSocketRole.Server)
        {
            output.Write(frame.ServerFrame);
            return frame.ServerFrame.Length;
        }

        FrameEncoder.WriteFrame(output, frame.Fin, 0, frame.Opcode, frame.Payload, masked: true, NextMaskKey());
        return FrameHeader.GetEncodedLength(frame.PayloadLength, masked: true) + frame.PayloadLength;
    }

    /// <summary>
    /// Writes a whole message compressed (RFC 7692 §7.2.1, RSV1 on its only frame); -1 when compressing would not make
    /// it smaller, and it is to be sent as is. Without context takeover a server sends a prepared frame's shared
    /// compressed bytes (compressed once for every such connection); otherwise the message is compressed here, in
    /// queue order, by this connection's own compressor (context takeover) or a pooled one.
    /// </summary>
    private int WriteCompressedFrame(IBufferWriter<byte> output, in OutboundFrame frame)
    {
        if (_sendResetContext && Role == WebSocketRole.Server && frame.Prepared is { } prepared)
        {
            ReadOnlyMemory<byte>? shared = prepared.GetCompressedFrame(_options.CompressionLevel, _sendWindowBits);
            if (shared is not { } bytes)
            {
                return -1;
            }

            output.Write(bytes.Span);
            return bytes.Length;
        }

        DeflateCompressor compressor = _sendResetContext
            ? DeflatePool.RentCompressor(_options.CompressionLevel, _sendWindowBits)
            : _compressor ??= new DeflateCompressor(_options.CompressionLevel, _sendWindowBits);
        byte[] scratch = ArrayPool<byte>.Shared.Rent(frame.PayloadLength);
        try
        {
            int n = compressor.Compress(frame.Payload, scratch.AsSpan(0, frame.PayloadLength - 1), _sendResetContext);
            if (n < 0)
            {
                return -1;
            }

            bool masked = Role == WebSocketRole.Client;
            FrameEncoder.WriteFrame(output, true, 0x4, frame.Opcode, scratch.AsSpan(0, n), masked, masked ? NextMaskKey() : 0);
            return FrameHeader.GetEncodedLength(n, masked) + n;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
            if (_sendResetContext)
            {
                DeflatePool.Return(compressor);
            }
        }
    }

    private void DisposeCompressor()
    {
        _compressor?.Dispose();
        _compressor = null;
    }

    private uint NextMaskKey()
    {
        // RFC 6455 §5.3: a fresh, unpredictable key per frame. Drawn from the random source 64 keys at a time.
        _maskKeys ??= new byte[256];
        if (_maskKeyIndex == 0)
        {
            _random!.Fill(_maskKeys);
        }

        uint key = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(_maskKeys.AsSpan(_maskKeyIndex));
        _maskKeyIndex = (_maskKeyIndex + 4) & 255;
        return key;
    }

    // ------------------------------------------------------------------ receiving

    /// <summary>
    /// Pull-mode receive for connections started with <see cref="StartReceiving"/>: the next whole message,
    /// or null once the connection has closed (see <see cref="Completion"/> for how).
    /// </summary>
    public async ValueTask<ReceivedMessage?> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        Channel<ReceivedMessage> channel = _receiveChannel ?? throw new InvalidOperationException("This connection delivers messages to a handler; ReceiveAsync is for connections started with StartReceiving().");
        while (true)
        {
            if (channel.Reader.TryRead(out ReceivedMessage? m))
            {
                return m;
            }

            // Everything received so far was taken, and the application asks for more: it has handled (and answered)
            // what came before. A failure waiting for that point may go ahead now.
            _receiveWaiting = true;
            Interlocked.MemoryBarrier(); // the flag must be visible before the check (the failing side does the mirror image)
            Volatile.Read(ref _handledBeforeFailure)?.TrySetResult();
            try
            {
                if (!await channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }
            }
            finally
            {
                _receiveWaiting = false;
            }
        }
    }

    private volatile bool _receiveWaiting; // pull mode: a ReceiveAsync call waits on an empty queue
    private TaskCompletionSource? _handledBeforeFailure; // pull mode: set while a failure waits for the application

    /// <summary>
    /// Pull mode: before failing the connection, lets the application take the messages that arrived before the
    /// violation and send its replies (as a push-mode handler does, since it runs before the next frame is parsed): the
    /// failure goes ahead once the application asks for the next message on an empty queue, or after
    /// <see cref="WebSocketConnectionOptions.CloseTimeout"/> when it does not read.
    /// </summary>
    private async ValueTask WaitForApplicationAsync()
    {
        Channel<ReceivedMessage>? channel = _receiveChannel;
        if (channel is null || (channel.Reader.Count == 0 && _receiveWaiting))
        {
            return;
        }

        var handled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _handledBeforeFailure, handled); // a full fence before reading the flag
        if (channel.Reader.Count == 0 && _receiveWaiting)
        {
            return; // it started waiting meanwhile
        }

        try
        {
            await handled.Task.WaitAsync(_options.CloseTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // the application does not read: fail anyway
        }
    }

    /// <summary>Starts the read loop in pull mode: messages are buffered (bounded) for <see cref="ReceiveAsync"/>.</summary>
    public void StartReceiving()
    {
        _receiveChannel = Channel.CreateBounded<ReceivedMessage>(new BoundedChannelOptions(Math.Max(1, _options.ReceiveQueueCapacity))
        {
            SingleReader = false,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _ = RunAsync(new ChannelHandler(_receiveChannel));
    }

    /// <summary>
    /// Runs the connection until it closes: calls the handler for open, each message, error and close, and
    /// returns how it ended. Call once. Cancelling <paramref name="cancellationToken"/> aborts the connection.
    /// </summary>
    public async Task<WebSocketCloseStatus> RunAsync(WebSocketHandler handler, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _running, 1) != 0)
        {
            throw new InvalidOperationException("RunAsync was already called for this connection.");
        }

        _lastReceiveMs = _heartbeat.NowMs;
        Volatile.Write(ref _state, (int)WebSocketState.Open);
        _heartbeat.Register(this);
        WebSocketMetrics.Opened();
        using CancellationTokenRegistration reg = cancellationToken.Register(static s => ((WebSocketConnection)s!).Abort("Cancelled"), this);
        try
        {
            if (await InvokeAsync(handler, static (h, c, _) => h.OnOpenAsync(c), default(FrameEvent)).ConfigureAwait(false))
            {
                // The read loop, in this method rather than one of its own: one state machine per connection, not two.
                PipeReader input = _transport.Input;
                while (true)
                {
                    ReadResult result = await input.ReadAsync().ConfigureAwait(false);
                    ReadOnlySequence<byte> buffer = result.Buffer;
                    if (!buffer.IsEmpty)
                    {
                        Volatile.Write(ref _lastReceiveMs, _heartbeat.NowMs);
                        Volatile.Write(ref _pingSentMs, -1);
                    }

                    SequencePosition consumed = buffer.Start;
                    if (_stopParsing)
                    {
                        consumed = buffer.End; // after the close handshake (client waiting for TCP close): discard
                    }
                    else
                    {
                        while (true)
                        {
                            var reader = new SequenceReader<byte>(buffer.Slice(consumed));
                            _decoder ??= new FrameDecoder(new FrameDecoderOptions
                            {
                                Role = Role,
                                MaxMessageSize = _options.MaxMessageSize,
                                AllowedReservedBits = Compression is null ? (byte)0 : (byte)0x4, // RSV1 marks a compressed message (§6)
                            });
                            DecodeStatus decoded = _decoder.Decode(ref reader, out FrameEvent ev);
                            consumed = reader.Position;
                            if (decoded == DecodeStatus.NeedMoreData)
                            {
                                break;
                            }

                            // ev.Payload points into buffer, which stays valid until AdvanceTo below. Sends made while the
                            // event is handled synchronously on this thread are written after the batch (see ScheduleWriter).
                            t_readLoopOwner = this;
                            ValueTask<bool> handled;
                            try
                            {
                                handled = HandleEventAsync(handler, ev);
                            }
                            finally
                            {
                                t_readLoopOwner = null;
                            }

                            if (!handled.IsCompleted)
                            {
                                RunDeferredWriter(); // the handler went asynchronous: do not hold its replies back meanwhile
                            }

                            if (!await handled.ConfigureAwait(false))
                            {
                                consumed = buffer.End;
                                break;
                            }
                        }

                        RunDeferredWriter();
                    }

                    WebSocketMetrics.Received(buffer.Slice(buffer.Start, consumed).Length);
                    input.AdvanceTo(consumed, buffer.End);

                    if (result.IsCanceled || result.IsCompleted)
                    {
                        break;
                    }

                    if (_stopParsing && (_closingStorage?.Error is not null || Role == WebSocketRole.Server || !_handshakeComplete))
                    {
                        // A server closes the TCP connection first (RFC 6455 §7.1.1); a failed connection is dropped.
                        break;
                    }
                }
            }
        }
        catch (Exception ex)
        {
            // The transport failed or was aborted: an abnormal closure (1006).
            Ending.AbortReason ??= ex.Message;
        }
        finally
        {
            RunDeferredWriter(); // e.g. the read loop failed right after queueing a reply
            _heartbeat.Unregister(this);
            if (_decompressor is not null)
            {
                _decompressor.Dispose(); // mid-message or with context takeover: its state is not reusable
                _decompressor = null;
            }
        }

        return await EndAsync(handler).ConfigureAwait(false);
    }

    /// <summary>
    /// After the read loop: flushes the close frame, completes the transport, tells the handler. A method of its own so
    /// that its state is created when the connection ends, not kept in every open connection's suspended read loop.
    /// </summary>
    private async Task<WebSocketCloseStatus> EndAsync(WebSocketHandler handler)
    {
        // Let the writer flush whatever close frame is queued, then complete the output.
        _completeOutput = true;
        if (Interlocked.CompareExchange(ref _writerScheduled, 1, 0) == 0)
        {
            _ = WriterLoopAsync();
        }

        try
        {
            await WriterDone.Task.WaitAsync(_options.CloseTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Abort("Timed out flushing the close frame");
        }

        await _transport.Input.CompleteAsync().ConfigureAwait(false);
        (_transport as IDisposable)?.Dispose();
        ReturnMessageBuffer();
        Volatile.Write(ref _state, (int)WebSocketState.Closed);

        WebSocketMetrics.Closed();
        WebSocketCloseStatus status = ComputeStatus();
        Log.Closed(_logger, Id, status.Code, status.Reason, status.WasClean);
        try
        {
            await handler.OnCloseAsync(this, status).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.HandlerFailed(_logger, Id, ex);
        }

        _receiveChannel?.Writer.TryComplete();
        Tracker?.Remove(this);
        Ending.FinalStatus = status;
        _ended = true; // volatile write after FinalStatus: a Completion getter that sees it reads the status
        Interlocked.MemoryBarrier(); // the store above must not pass the load below (the getter fences with its CAS)
        Volatile.Read(ref _completionStorage)?.TrySetResult(status);
        SignalDrained();
        return status;
    }

    private WebSocketCloseStatus ComputeStatus()
    {
        Closing c = Ending;
        if (c.Error is { } error)
        {
            return new WebSocketCloseStatus(c.FrameReceived ? c.ReceivedCode : error.CloseCode, error.Message, WasClean: false);
        }

        if (c.FrameReceived)
        {
            return new WebSocketCloseStatus(c.ReceivedCode, c.ReceivedReason, _handshakeComplete);
        }

        return new WebSocketCloseStatus(WebSocketCloseCode.AbnormalClosure, c.AbortReason ?? "Connection closed without a close frame", WasClean: false);
    }


    /// <summary>Handles one decoded event; false when parsing must stop.</summary>
    private async ValueTask<bool> HandleEventAsync(WebSocketHandler handler, FrameEvent ev)
    {
        switch (ev.Kind)
        {
            case FrameEventKind.Data:
                if (!IsOpen)
                {
                    return true; // closing: messages after our close frame are dropped, as browsers do
                }

                if (ev.EndOfMessage)
                {
                    WebSocketMetrics.MessageReceived();
                }

                if (ev.Compressed)
                {
                    return await HandleCompressedAsync(handler, ev).ConfigureAwait(false);
                }

                if (handler.StreamsMessages)
                {
                    return await InvokeAsync(handler, static (h, c, e) => h.OnMessageChunkAsync(c, e.MessageType, e.Payload, e.EndOfMessage), ev).ConfigureAwait(false);
                }

                if (ev.EndOfMessage && !_assembling)
                {
                    return await InvokeAsync(handler, static (h, c, e) => h.OnMessageAsync(c, new WebSocketMessage(e.MessageType, e.Payload)), ev).ConfigureAwait(false);
                }

                AppendToMessage(ev);
                if (!ev.EndOfMessage)
                {
                    return true;
                }

                return await DeliverAssembledAsync(handler).ConfigureAwait(false);

            case FrameEventKind.Ping:
                if (IsOpen)
                {
                    QueuePong(ev.Payload);
                }

                return true;

            case FrameEventKind.Pong:
                // Any inbound byte already counted as liveness; unsolicited pongs need no answer (RFC 6455 §5.5.3).
                return await InvokeAsync(handler, static (h, c, e) => h.OnPongAsync(c, e.Payload), ev).ConfigureAwait(false);

            case FrameEventKind.Close:
                Closing closing = Ending;
                closing.FrameReceived = true;
                closing.ReceivedCode = ev.CloseCode;
                closing.ReceivedReason = ev.Reason ?? string.Empty;
                _handshakeComplete = true;
                _stopParsing = true;
                if (Interlocked.CompareExchange(ref _state, (int)WebSocketState.CloseReceived, (int)WebSocketState.Open) == (int)WebSocketState.Open)
                {
                    // Echo the status code (RFC 6455 §5.5.1); an empty close is answered with an empty close.
                    EnqueueCloseFrame(ev.CloseCode, null);
                }

                StartCloseTimer();
                return false;

            default:
                await FailAsync(handler, new WebSocketError(ev.CloseCode, ev.Reason ?? "Protocol error")).ConfigureAwait(false);
                return false;
        }
    }

    /// <summary>
    /// Delivers a message assembled from fragments. A method of its own, not a lambda capturing the message: a
    /// captured local would make the compiler allocate a closure on every event that enters the switch above.
    /// </summary>
    private async ValueTask<bool> DeliverAssembledAsync(WebSocketHandler handler)
    {
        var whole = new WebSocketMessage(_assemblingType, new ReadOnlySequence<byte>(_messageBuffer!, 0, _messageLength));
        try
        {
            await handler.OnMessageAsync(this, whole).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex)
        {
            return await HandlerFailedAsync(handler, ex).ConfigureAwait(false);
        }
        finally
        {
            _assembling = false;
            _messageLength = 0;
            ReturnMessageBuffer();
        }
    }

    /// <summary>
    /// A piece of a compressed message (RFC 7692 §7.2.2): inflated into the message buffer as it arrives, with the
    /// size limit applied to the inflated bytes (the buffer never grows past it, so a small message that would inflate
    /// to gigabytes fails with 1009 having allocated at most the limit) and UTF-8 checked on the inflated text.
    /// Streaming handlers get the inflated bytes piece by piece; others get the whole message.
    /// </summary>
    private async ValueTask<bool> HandleCompressedAsync(WebSocketHandler handler, FrameEvent ev)
    {
        if (!_assembling)
        {
            _assembling = true;
            _assemblingType = ev.MessageType;
            _messageLength = 0;
            _inflatedLength = 0;
            _inflatedUtf8.Reset();
            _decompressor ??= _receiveResetContext ? DeflatePool.RentDecompressor() : new DeflateDecompressor();
        }

        WebSocketError? error = null;
        foreach (ReadOnlyMemory<byte> segment in ev.Payload)
        {
            if ((error = Inflate(segment.Span, finish: false)) is not null)
            {
                break;
            }
        }

        if (error is null && ev.EndOfMessage)
        {
            error = Inflate(default, finish: true);
            if (error is null && _assemblingType == MessageType.Text && !_inflatedUtf8.IsComplete)
            {
                error = new WebSocketError(WebSocketCloseCode.InvalidPayloadData, "Invalid UTF-8 in text message");
            }
        }

        if (error is not null)
        {
            _assembling = false;
            _messageLength = 0;
            ReturnMessageBuffer();
            await FailAsync(handler, error.Value).ConfigureAwait(false);
            return false;
        }

        if (ev.EndOfMessage)
        {
            if (_receiveResetContext)
            {
                DeflatePool.Return(_decompressor!);
                _decompressor = null;
            }
            else
            {
                _decompressor!.EndMessage(resetContext: false);
            }
        }

        if (!handler.StreamsMessages)
        {
            return !ev.EndOfMessage || await DeliverAssembledAsync(handler).ConfigureAwait(false);
        }

        if (_messageLength == 0 && !ev.EndOfMessage)
        {
            return true;
        }

        try
        {
            await handler.OnMessageChunkAsync(this, _assemblingType, new ReadOnlySequence<byte>(_messageBuffer ?? [], 0, _messageLength), ev.EndOfMessage).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex)
        {
            return await HandlerFailedAsync(handler, ex).ConfigureAwait(false);
        }
        finally
        {
            _messageLength = 0; // the chunk was delivered: reuse the buffer for the next one
            if (ev.EndOfMessage || !_assembling)
            {
                _assembling = false;
                ReturnMessageBuffer();
            }
        }
    }

    /// <summary>Inflates compressed bytes (or, with <paramref name="finish"/>, the message's removed tail) into the message buffer.</summary>
    private WebSocketError? Inflate(ReadOnlySpan<byte> input, bool finish)
    {
        DeflateDecompressor inflater = _decompressor!;
        int tail = 0;
        while (true)
        {
            long allowance = _options.MaxMessageSize - _inflatedLength;
            int free = (_messageBuffer?.Length ?? 0) - _messageLength;
            if (free == 0)
            {
                // Grow geometrically, but never past the limit (+1 byte, to notice a message that exceeds it).
                long size = Math.Min(Math.Max(4096, (_messageBuffer?.Length ?? 0) * 2L), _messageLength + allowance + 1);
                byte[] bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(size, Array.MaxLength));
                _messageBuffer?.AsSpan(0, _messageLength).CopyTo(bigger);
                if (_messageBuffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(_messageBuffer);
                }

                _messageBuffer = bigger;
                free = bigger.Length - _messageLength;
            }

            Span<byte> destination = _messageBuffer.AsSpan(_messageLength, (int)Math.Min(free, allowance + 1));
            int consumed = 0, written;
            InflateStatus status = finish
                ? inflater.Finish(destination, ref tail, out written)
                : inflater.Inflate(input, destination, out consumed, out written);
            if (written > allowance)
            {
                return new WebSocketError(WebSocketCloseCode.MessageTooBig, "Message too big");
            }

            if (_assemblingType == MessageType.Text && !_inflatedUtf8.Append(destination[..written]))
            {
                return new WebSocketError(WebSocketCloseCode.InvalidPayloadData, "Invalid UTF-8 in text message");
            }

            _messageLength += written;
            _inflatedLength += written;
            if (status == InflateStatus.InvalidData)
            {
                return new WebSocketError(WebSocketCloseCode.InvalidPayloadData, "Invalid compressed data");
            }

            input = input[consumed..];
            if (status == InflateStatus.NeedsInput)
            {
                return null;
            }
        }
    }

    /// <summary>The handler threw: log it and fail the connection with 1011 (the exception is never sent). Always false.</summary>
    private async ValueTask<bool> HandlerFailedAsync(WebSocketHandler handler, Exception ex)
    {
        Log.HandlerFailed(_logger, Id, ex);
        await FailAsync(handler, new WebSocketError(WebSocketCloseCode.InternalError, "Internal error", ex)).ConfigureAwait(false);
        return false;
    }

    private async ValueTask FailAsync(WebSocketHandler handler, WebSocketError error)
    {
        if (error.CloseCode is not (WebSocketCloseCode.InternalError or WebSocketCloseCode.AbnormalClosure))
        {
            await WaitForApplicationAsync().ConfigureAwait(false); // a protocol violation by the peer (not our own failure)
        }

        Ending.Error ??= error;
        _stopParsing = true;
        Log.Failed(_logger, Id, error.CloseCode, error.Message);
        StartClose(error.CloseCode, ClosePayload.Truncate(error.Message));
        try
        {
            await handler.OnErrorAsync(this, error).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.HandlerFailed(_logger, Id, ex);
        }
    }

    private async ValueTask<bool> InvokeAsync(WebSocketHandler handler, Func<WebSocketHandler, WebSocketConnection, FrameEvent, ValueTask> call, FrameEvent ev)
    {
        try
        {
            await call(handler, this, ev).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex)
        {
            return await HandlerFailedAsync(handler, ex).ConfigureAwait(false);
        }
    }

    private void AppendToMessage(FrameEvent ev)
    {
        if (!_assembling)
        {
            _assembling = true;
            _assemblingType = ev.MessageType;
            _messageLength = 0;
        }

        int needed = checked(_messageLength + (int)ev.Payload.Length);
        if (_messageBuffer is null || _messageBuffer.Length < needed)
        {
            int size = (int)Math.Min(Math.Max(needed, Math.Max(4096, (_messageBuffer?.Length ?? 0) * 2L)), Math.Max(needed, _options.MaxMessageSize));
            byte[] bigger = ArrayPool<byte>.Shared.Rent(size);
            if (_messageBuffer is not null)
            {
                _messageBuffer.AsSpan(0, _messageLength).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_messageBuffer);
            }

            _messageBuffer = bigger;
        }

        ev.Payload.CopyTo(_messageBuffer.AsSpan(_messageLength));
        _messageLength = needed;
    }

    private void ReturnMessageBuffer()
    {
        // Idle connections hold no message buffer: it is rented per fragmented message only.
        if (_messageBuffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_messageBuffer);
            _messageBuffer = null;
        }
    }

    // ------------------------------------------------------------------ heartbeat and abort

    internal void OnHeartbeat(long nowMs)
    {
        if (IsOpen && _options.KeepAliveInterval is { } interval)
        {
            long pingSent = Volatile.Read(ref _pingSentMs);
            if (pingSent < 0)
            {
                if (nowMs - Volatile.Read(ref _lastReceiveMs) >= (long)interval.TotalMilliseconds)
                {
                    Volatile.Write(ref _pingSentMs, nowMs);
                    EnqueueControl(OutboundFrame.Rent(Opcode.Ping, default, fin: true));
                }
            }
            else if (nowMs - pingSent >= (long)_options.KeepAliveTimeout.TotalMilliseconds)
            {
                Ending.Error ??= new WebSocketError(WebSocketCloseCode.AbnormalClosure, "Keepalive timeout: no pong from the peer");
                Abort("Keepalive timeout");
            }
        }

        if (_closingStorage is { } closingState && nowMs >= Volatile.Read(ref closingState.DeadlineMs))
        {
            Abort("Closing handshake timed out");
        }
    }

    private void Abort(string reason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        Ending.AbortReason ??= reason;
        Log.Aborted(_logger, Id, reason);
        try
        {
            _transport.Input.CancelPendingRead();
        }
        catch (Exception)
        {
            // Already completed.
        }

        try
        {
            _abortTransport?.Invoke();
        }
        catch (Exception)
        {
            // Already torn down.
        }
    }

    /// <summary>The pongs waiting to be written, in ping order: a ring of at most <see cref="Max"/> payloads.</summary>
    private sealed class PendingPongs
    {
        /// <summary>Pongs waiting at most; beyond, the newest ping's payload replaces the last one's.</summary>
        public const int Max = 16;

        private readonly byte[] _payloads = new byte[Max * 125];
        private readonly int[] _lengths = new int[Max];
        private int _first;
        private int _count;

        /// <summary>Adds a pong; false when full (then the last pending pong takes this payload instead).</summary>
        public bool TryAdd(ReadOnlySequence<byte> payload)
        {
            bool added = _count < Max;
            int slot = added ? (_first + _count) % Max : (_first + _count - 1) % Max;
            payload.CopyTo(_payloads.AsSpan(slot * 125, 125));
            _lengths[slot] = (int)payload.Length;
            if (added)
            {
                _count++;
            }

            return added;
        }

        /// <summary>Copies the oldest pending payload into <paramref name="destination"/> and removes it; its length.</summary>
        public int TakeFirst(Span<byte> destination)
        {
            int length = _lengths[_first];
            _payloads.AsSpan(_first * 125, length).CopyTo(destination);
            _first = (_first + 1) % Max;
            _count--;
            return length;
        }
    }

    /// <summary>A host's set of open connections: the connection removes itself when it ends.</summary>
    internal interface IConnectionTracker
    {
        void Remove(WebSocketConnection connection);
    }

    private sealed class ChannelHandler(Channel<ReceivedMessage> channel) : WebSocketHandler
    {
        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message) =>
            channel.Writer.WriteAsync(new ReceivedMessage(message.Type, message.ToArray()));
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Connection {Id} failed with {Code}: {Reason}")]
        public static partial void Failed(ILogger logger, long id, ushort code, string reason);

        [LoggerMessage(2, LogLevel.Debug, "Connection {Id} closed: {Code} {Reason} (clean: {WasClean})")]
        public static partial void Closed(ILogger logger, long id, ushort code, string reason, bool wasClean);

        [LoggerMessage(3, LogLevel.Debug, "Connection {Id} aborted: {Reason}")]
        public static partial void Aborted(ILogger logger, long id, string reason);

        [LoggerMessage(4, LogLevel.Warning, "Connection {Id}: outbound queue limit exceeded ({Bytes} bytes); closing with 1008")]
        public static partial void OutboundOverflow(ILogger logger, long id, long bytes);

        [LoggerMessage(5, LogLevel.Error, "Connection {Id}: the message handler threw")]
        public static partial void HandlerFailed(ILogger logger, long id, Exception exception);

        [LoggerMessage(6, LogLevel.Debug, "Connection {Id}: write failed: {Message}")]
        public static partial void WriteFailed(ILogger logger, long id, string message);
    }
}
