using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Switchboard.Protocol;
using Switchboard.Protocol.Extensions;
using Switchboard.Protocol.Handshake;

namespace Switchboard.WebSockets;

/// <summary>
/// One WebSocket connection on an <see cref="IDuplexPipe"/>, after the opening handshake: a pump between the transport
/// and the connection's <see cref="WebSocketProtocol"/> state machine.
/// <para>
/// Receiving: one read loop (<see cref="RunAsync"/>) feeds the bytes to the protocol and awaits the handler for each
/// event in order; pings are answered, close frames answered, violations fail the connection with their close code.
/// </para>
/// <para>
/// Sending: every send only enqueues (lock-free) and returns a <see cref="SendResult"/>; one writer per connection,
/// scheduled only while there is something to write, drains everything queued and flushes once per batch. Sends from
/// any number of threads are safe and keep each thread's order.
/// </para>
/// </summary>
public sealed partial class WebSocketConnection : IHeartbeatListener
{
    private static long s_nextId;

    private readonly WebSocketHeartbeat _heartbeat;
    private readonly ILogger _logger;
    private readonly Action? _abortTransport;
    private readonly OutboundQueue _outbound;
    private TaskCompletionSource<WebSocketCloseStatus>? _completionStorage; // created when someone asks, or at the end
    private volatile bool _ended;
    private int _running;
    private ScheduledClose? _scheduledClose; // created by CloseAt: most connections hold none

    /// <summary>
    /// Wraps an upgraded transport. <paramref name="abortTransport"/> must tear the underlying connection down
    /// at once (used for timeouts); the connection completes both pipe ends itself when it finishes.
    /// </summary>
    public WebSocketConnection(IDuplexPipe transport, WebSocketRole role, WebSocketConnectionOptions? options = null,
        string? subProtocol = null, Action? abortTransport = null, IWebSocketRandom? random = null, DeflateParameters? compression = null)
    {
        Transport = transport;
        _abortTransport = abortTransport;
        Options = options ?? WebSocketConnectionOptions.Default;
        _heartbeat = Options.Heartbeat ?? WebSocketHeartbeat.Shared;
        _logger = Options.Logger ?? NullLogger.Instance;
        SubProtocol = subProtocol;
        Id = Interlocked.Increment(ref s_nextId);
        Protocol = new WebSocketProtocol(role, Options.ProtocolSettings, compression, random);
        _outbound = new OutboundQueue(this);
    }

    /// <summary>A process-unique id.</summary>
    public long Id { get; }

    /// <summary>Server or client side.</summary>
    public WebSocketRole Role => Protocol.Role;

    /// <summary>The subprotocol agreed in the handshake, or null.</summary>
    public string? SubProtocol { get; }

    /// <summary>The permessage-deflate parameters agreed in the handshake, or null when messages are never compressed.</summary>
    public DeflateParameters? Compression => Protocol.Compression;

    /// <summary>The current state.</summary>
    public WebSocketState State => Protocol.State;

    /// <summary>
    /// Told when the connection has ended, before <see cref="Completion"/> completes: a host's set of open connections
    /// keeps no task per connection to learn it.
    /// </summary>
    public IWebSocketConnectionTracker? Tracker { get; set; }

    /// <summary>
    /// The connected socket under the transport when nothing sits between them (no TLS): the writer then sends each
    /// batch with one <c>send</c> on it instead of going through the transport's output pipe, which is then never
    /// written, only completed at the end (so that the host shuts the socket down). Reading still uses the pipe.
    /// </summary>
    public Socket? DirectSocket { get; init; }

    /// <summary>Free for the application's own per-connection state.</summary>
    public object? UserState { get; set; }

    /// <summary>Bytes waiting in the outbound queue.</summary>
    public long QueuedBytes => _outbound.QueuedBytes;

    /// <summary>For tests: whether the outbound queue holds its ring (given back after a tick without sends).</summary>
    internal bool HoldsOutboundQueue => _outbound.HoldsRing;

    internal WebSocketProtocol Protocol { get; }

    internal WebSocketConnectionOptions Options { get; }

    internal IDuplexPipe Transport { get; }

    internal bool HasEnded => _ended;

    internal long NowMs => _heartbeat.NowMs;

    internal TimeProvider Time => _heartbeat.Time;

    /// <summary>
    /// Completes when everything queued so far has been handed to the transport (the queue is empty), or when the
    /// connection has ended. For producers that pace themselves, e.g. a history replay.
    /// </summary>
    public Task WhenOutboundDrainedAsync() => _outbound.WhenDrainedAsync();

    /// <summary>Completes with the close status when the connection has ended.</summary>
    public Task<WebSocketCloseStatus> Completion
    {
        get
        {
            // Lazily created: most server connections are never asked, and an idle connection should hold little. The end
            // creates it too, so whoever asks after the end finds it completed.
            return CompletionSource.Task;
        }
    }

    private TaskCompletionSource<WebSocketCloseStatus> CompletionSource =>
        Volatile.Read(ref _completionStorage)
            ?? Interlocked.CompareExchange(ref _completionStorage, new(TaskCreationOptions.RunContinuationsAsynchronously), null)
            ?? _completionStorage!;

    // ------------------------------------------------------------------ sending

    /// <summary>Queues a prepared frame: the same bytes are shared with every other connection it is sent to.</summary>
    public SendResult Send(PreparedFrame frame) => _outbound.Enqueue(OutboundFrame.From(frame));

    /// <summary>
    /// Queues a prepared frame only if the outbound queue holds at most <paramref name="softLimitBytes"/>; otherwise
    /// returns <see cref="SendResult.QueueFull"/> and leaves the connection alone (no overflow policy applies). For
    /// traffic the sender can recover later, e.g. a room's live stream that a lagging member re-reads from history.
    /// </summary>
    public SendResult TrySend(PreparedFrame frame, long softLimitBytes)
    {
        if (_outbound.QueuedBytes > softLimitBytes)
        {
            return Protocol.IsOpen ? SendResult.QueueFull : SendResult.Closed;
        }

        return Send(frame);
    }

    /// <summary>Queues a text message. <paramref name="compress"/> false keeps it uncompressed (e.g. it carries a secret).</summary>
    public SendResult SendText(ReadOnlySpan<char> text, bool compress = true) =>
        Protocol.IsOpen ? _outbound.Enqueue(OutboundFrame.RentText(text, compress)) : SendResult.Closed;

    /// <summary>Queues a text message. <paramref name="compress"/> false keeps it uncompressed (e.g. it carries a secret).</summary>
    public SendResult SendText(string text, bool compress = true) => SendText(text.AsSpan(), compress);

    /// <summary>Queues a message. Text payloads must be valid UTF-8. <paramref name="compress"/> false keeps it uncompressed.</summary>
    public SendResult Send(MessageType type, ReadOnlySpan<byte> payload, bool compress = true) =>
        Protocol.IsOpen ? _outbound.Enqueue(OutboundFrame.Rent((Opcode)type, payload, fin: true, compress)) : SendResult.Closed;

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
        Protocol.IsOpen ? _outbound.Enqueue(OutboundFrame.Rent(isFirst ? (Opcode)type : Opcode.Continuation, payload, endOfMessage)) : SendResult.Closed;

    /// <summary>Sends a ping (at most 125 bytes of payload).</summary>
    public SendResult SendPing(ReadOnlySpan<byte> payload = default)
    {
        if (payload.Length > 125)
        {
            throw new ArgumentException("A ping payload is at most 125 bytes (RFC 6455 §5.5).", nameof(payload));
        }

        if (!Protocol.IsOpen)
        {
            return SendResult.Closed;
        }

        _outbound.EnqueueControl(OutboundFrame.Rent(Opcode.Ping, payload));
        return SendResult.Enqueued;
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

    /// <summary>
    /// Closes with <paramref name="code"/> at <paramref name="when"/> (on the heartbeat's clock, checked on its tick: no
    /// timer per connection), e.g. when the credentials it was opened with expire. A later call replaces the deadline.
    /// </summary>
    public void CloseAt(DateTimeOffset when, ushort code, string? reason)
    {
        ClosePayload.Validate(code, reason);
        Volatile.Write(ref _scheduledClose, new ScheduledClose(_heartbeat.ToHeartbeatMs(when), code, reason));
    }

    private sealed record ScheduledClose(long DeadlineMs, ushort Code, string? Reason);

    internal void StartClose(ushort code, string? reason)
    {
        if (Protocol.StartClose(code, reason, NowMs, out OutboundFrame closeFrame))
        {
            _outbound.EnqueueControl(closeFrame);
        }
    }

    internal void OnOutboundOverflow(long total)
    {
        Log.OutboundOverflow(_logger, Id, total);
        Options.Metrics?.SlowConsumer();
    }

    internal void OnWriteFailed(Exception ex) => Log.WriteFailed(_logger, Id, ex.Message);

    // ------------------------------------------------------------------ heartbeat and abort

    /// <summary>The heartbeat's tick: keepalive pings, keepalive and closing-handshake timeouts, a scheduled close.</summary>
    void IHeartbeatListener.OnHeartbeat(long nowMs)
    {
        if (Volatile.Read(ref _scheduledClose) is { } scheduled && nowMs >= scheduled.DeadlineMs)
        {
            StartClose(scheduled.Code, scheduled.Reason);
        }

        _outbound.TrimIfIdle();
        switch (Protocol.OnTick(nowMs, out OutboundFrame ping))
        {
            case TickAction.SendPing:
                _outbound.EnqueueControl(ping);
                break;
            case TickAction.Abort:
                TearDown();
                break;
        }
    }

    internal void Abort(string reason)
    {
        if (Protocol.RecordAbort(reason))
        {
            TearDown();
        }
    }

    private void TearDown()
    {
        Log.Aborted(_logger, Id, Protocol.AbortReason ?? "");
        try
        {
            Transport.Input.CancelPendingRead();
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

/// <summary>A host's set of open connections: a connection removes itself when it ends.</summary>
public interface IWebSocketConnectionTracker
{
    /// <summary>The connection has ended.</summary>
    void Remove(WebSocketConnection connection);
}
