using System.Buffers;
using System.Buffers.Binary;
using Switchboard.Protocol.Extensions;
using Switchboard.Protocol.Handshake;

namespace Switchboard.Protocol;

/// <summary>What <see cref="WebSocketProtocol.OnTick"/> asks the caller to do.</summary>
public enum TickAction
{
    /// <summary>Nothing is due.</summary>
    None,
    /// <summary>Queue the keepalive ping it returned.</summary>
    SendPing,
    /// <summary>Tear the transport down at once: a keepalive or closing-handshake timeout (the reason is recorded).</summary>
    Abort,
}

/// <summary>
/// One WebSocket connection's protocol state machine (RFC 6455, RFC 7692), sans-I/O: received bytes in, events out
/// (<see cref="TryReceive"/>); queued frames in, bytes out (<see cref="Write"/>). It owns the connection state, the
/// closing handshake (§7), pong answers, fragmentation, permessage-deflate with the inflated-size limit and UTF-8
/// checks after inflation, keepalive and close deadlines, and failing the connection. No clock and no I/O: the caller
/// passes "now" in milliseconds on any monotonic clock.
/// <para>
/// Threads: <see cref="TryReceive"/> and <see cref="Fail"/> belong to one reader; <see cref="Write"/> and
/// <see cref="OnFlushed"/> to one writer; <see cref="StartClose"/>, <see cref="OnTick"/>, <see cref="RecordAbort"/> and
/// <see cref="State"/> may be used from any thread.
/// </para>
/// </summary>
public sealed class WebSocketProtocol
{
    private readonly WebSocketProtocolSettings _settings;
    private readonly IWebSocketRandom? _random;
    private int _state = (int)WebSocketState.Connecting;

    // receive side (the reader)
    private FrameDecoder? _decoder; // created by the first bytes: an idle connection that never sent any holds none
    private MessageAssembler? _assembler; // created by the first fragmented or compressed message
    private AfterDelivery _afterDelivery;
    private bool _stopped;
    private long _lastReceiveMs;
    private long _pingSentMs = -1;
    private PendingPongs? _pongs; // created by the first ping

    // send side (the writer)
    private readonly bool _sendCompressed;
    private readonly bool _sendResetContext;
    private readonly int _sendWindowBits;
    private DeflateCompressor? _compressor; // context takeover: kept between messages
    private byte[]? _maskKeys;
    private int _maskKeyIndex;
    private bool _closeWritten;

    private Closing? _closing; // created when the connection starts to end: an open connection holds none

    /// <summary>Creates the state machine for one connection, in <see cref="WebSocketState.Connecting"/>.</summary>
    public WebSocketProtocol(WebSocketRole role, WebSocketProtocolSettings? settings = null, DeflateParameters? compression = null, IWebSocketRandom? random = null)
    {
        _settings = settings ?? WebSocketProtocolSettings.Default;
        Role = role;
        Compression = compression;
        if (compression is not null)
        {
            bool server = role == WebSocketRole.Server;
            _sendResetContext = server ? compression.ServerNoContextTakeover : compression.ClientNoContextTakeover;
            _sendWindowBits = server ? compression.ServerMaxWindowBits : compression.ClientMaxWindowBits;
            // zlib cannot compress with a raw 8-bit window; sending uncompressed is always allowed (RFC 7692 §6).
            _sendCompressed = _sendWindowBits >= 9;
        }

        if (role == WebSocketRole.Client)
        {
            _random = random ?? CryptoWebSocketRandom.Instance;
        }
    }

    private enum AfterDelivery : byte
    {
        Nothing,
        ClearMessage,
        TakeChunk,
    }

    /// <summary>How the connection is ending: written by the reader, the writer's owner and timeouts; read at the end.</summary>
    private sealed class Closing
    {
        public long DeadlineMs = long.MaxValue;
        public bool FrameReceived;
        public bool HandshakeComplete;
        public ushort ReceivedCode;
        public string ReceivedReason = string.Empty;
        public WebSocketError? Error;
        public string? AbortReason;
        public int Aborted;
    }

    private Closing Ending =>
        Volatile.Read(ref _closing) ?? Interlocked.CompareExchange(ref _closing, new Closing(), null) ?? _closing!;

    /// <summary>Server or client.</summary>
    public WebSocketRole Role { get; }

    /// <summary>The negotiated permessage-deflate parameters, or null.</summary>
    public DeflateParameters? Compression { get; }

    /// <summary>The connection state.</summary>
    public WebSocketState State => (WebSocketState)Volatile.Read(ref _state);

    /// <summary>Data may be sent (the state is <see cref="WebSocketState.Open"/>).</summary>
    public bool IsOpen => Volatile.Read(ref _state) == (int)WebSocketState.Open;

    /// <summary>Deliver messages in chunks as they arrive instead of whole (set before receiving).</summary>
    public bool DeliverChunks { get; set; }

    /// <summary>Nothing more is parsed: a close frame arrived or the connection failed. Discard further input.</summary>
    public bool ReceiveStopped => _stopped;

    /// <summary>
    /// The transport should be closed now: a server after the closing handshake (it closes TCP first, §7.1.1), or any
    /// side after a failure. A client that completed the handshake waits for the server to close TCP.
    /// </summary>
    public bool ShouldCloseTransport =>
        _stopped && (_closing?.Error is not null || Role == WebSocketRole.Server || _closing?.HandshakeComplete != true);

    /// <summary>Our close frame was written: nothing more will be.</summary>
    public bool CloseWritten => _closeWritten;

    /// <summary>Pongs that may wait at most; past it, a ping's payload replaces the last waiting pong's.</summary>
    public static int MaxPendingPongs => PendingPongs.Max;

    /// <summary>The opening handshake is done: <see cref="WebSocketState.Open"/>, with <paramref name="nowMs"/> as the last sign of life.</summary>
    public void Open(long nowMs)
    {
        Volatile.Write(ref _lastReceiveMs, nowMs);
        Volatile.Write(ref _state, (int)WebSocketState.Open);
    }

    // ------------------------------------------------------------------ receiving

    /// <summary>Bytes arrived at <paramref name="nowMs"/>: the peer is alive, and a keepalive ping is answered.</summary>
    public void OnBytesReceived(long nowMs)
    {
        Volatile.Write(ref _lastReceiveMs, nowMs);
        Volatile.Write(ref _pingSentMs, -1);
    }

    /// <summary>
    /// Decodes the next event from <paramref name="reader"/> and advances it past what was consumed; false when more
    /// bytes are needed (keep the unconsumed ones and call again with more). Frames are processed strictly in order:
    /// every event before a violation is returned before the <see cref="ProtocolEventKind.Violation"/>.
    /// </summary>
    public bool TryReceive(ref SequenceReader<byte> reader, long nowMs, out ProtocolEvent ev)
    {
        ReleaseDelivered();
        while (!_stopped)
        {
            _decoder ??= new FrameDecoder(new FrameDecoderOptions
            {
                Role = Role,
                MaxMessageSize = _settings.MaxMessageSize,
                AllowedReservedBits = Compression is null ? (byte)0 : (byte)0x4, // RSV1 marks a compressed message (RFC 7692 §6)
            });
            if (_decoder.Decode(ref reader, out FrameEvent frame) == DecodeStatus.NeedMoreData)
            {
                break;
            }

            switch (frame.Kind)
            {
                case FrameEventKind.Data:
                    if (OnData(frame, out ev))
                    {
                        return true;
                    }

                    continue;

                case FrameEventKind.Ping:
                    ev = ProtocolEvent.Ping(frame.Payload, IsOpen && (Volatile.Read(ref _pongs) ?? Interlocked.CompareExchange(ref _pongs, new(), null) ?? _pongs!).TryAdd(frame.Payload));
                    return true;

                case FrameEventKind.Pong:
                    ev = ProtocolEvent.Pong(frame.Payload);
                    return true;

                case FrameEventKind.Close:
                    Closing closing = Ending;
                    closing.FrameReceived = true;
                    closing.ReceivedCode = frame.CloseCode;
                    closing.ReceivedReason = frame.Reason ?? string.Empty;
                    closing.HandshakeComplete = true;
                    _stopped = true;
                    bool reply = Interlocked.CompareExchange(ref _state, (int)WebSocketState.CloseReceived, (int)WebSocketState.Open) == (int)WebSocketState.Open;
                    SetCloseDeadline(nowMs);
                    // Echo the status code (§5.5.1); an empty close is answered with an empty close.
                    ev = ProtocolEvent.Close(frame.CloseCode, closing.ReceivedReason, reply);
                    return true;

                default:
                    _stopped = true;
                    ev = ProtocolEvent.Failure(frame.Violation);
                    return true;
            }
        }

        ev = default;
        return false;
    }

    /// <summary>
    /// The frame to queue in answer to <paramref name="ev"/> when its <see cref="ProtocolEvent.HasReply"/> is set: the
    /// pong for a ping (its payload is taken from the pending pongs when written), or the echo of a close code (§5.5.1;
    /// an empty close is answered with an empty close).
    /// </summary>
    public static OutboundFrame ReplyTo(in ProtocolEvent ev) => ev.Kind switch
    {
        ProtocolEventKind.Ping when ev.HasReply => OutboundFrame.PongMarker,
        ProtocolEventKind.Close when ev.HasReply => CloseFrame(ev.CloseCode, null),
        _ => throw new InvalidOperationException("This event needs no reply."),
    };

    private bool OnData(in FrameEvent frame, out ProtocolEvent ev)
    {
        ev = default;
        if (!IsOpen)
        {
            return false; // closing: messages after our close frame are dropped, as browsers do
        }

        if (frame.Compressed)
        {
            MessageAssembler inflating = Assembler;
            if (!inflating.Active)
            {
                inflating.Begin(frame.MessageType, compressed: true);
            }

            FrameViolation violation = inflating.Inflate(frame.Payload, frame.EndOfMessage);
            if (violation != FrameViolation.None)
            {
                inflating.Clear();
                _stopped = true;
                ev = ProtocolEvent.Failure(violation);
                return true;
            }

            if (!DeliverChunks)
            {
                if (!frame.EndOfMessage)
                {
                    return false;
                }

                _afterDelivery = AfterDelivery.ClearMessage;
                ev = ProtocolEvent.Message(inflating.Type, inflating.Content);
                return true;
            }

            if (inflating.Length == 0 && !frame.EndOfMessage)
            {
                return false;
            }

            _afterDelivery = frame.EndOfMessage ? AfterDelivery.ClearMessage : AfterDelivery.TakeChunk;
            ev = ProtocolEvent.Chunk(inflating.Type, inflating.Content, frame.EndOfMessage);
            return true;
        }

        if (DeliverChunks)
        {
            ev = ProtocolEvent.Chunk(frame.MessageType, frame.Payload, frame.EndOfMessage);
            return true;
        }

        if (frame.EndOfMessage && _assembler?.Active != true)
        {
            ev = ProtocolEvent.Message(frame.MessageType, frame.Payload); // one frame: straight from the input, no copy
            return true;
        }

        MessageAssembler joining = Assembler;
        if (!joining.Active)
        {
            joining.Begin(frame.MessageType, compressed: false);
        }

        joining.Append(frame.Payload);
        if (!frame.EndOfMessage)
        {
            return false;
        }

        _afterDelivery = AfterDelivery.ClearMessage;
        ev = ProtocolEvent.Message(joining.Type, joining.Content);
        return true;
    }

    private MessageAssembler Assembler =>
        _assembler ??= new MessageAssembler(_settings.MaxMessageSize, _settings.DeflatePool, Compression is { } c && (Role == WebSocketRole.Server ? c.ClientNoContextTakeover : c.ServerNoContextTakeover));

    /// <summary>The last event's payload from the message buffer was handled: reuse or return the buffer.</summary>
    private void ReleaseDelivered()
    {
        switch (_afterDelivery)
        {
            case AfterDelivery.ClearMessage:
                _assembler!.Clear();
                break;
            case AfterDelivery.TakeChunk:
                _assembler!.TakeChunk();
                break;
        }

        _afterDelivery = AfterDelivery.Nothing;
    }

    /// <summary>
    /// Fails the connection (§7.1.7): records <paramref name="error"/>, stops receiving and starts the closing handshake
    /// with its code. True when <paramref name="closeFrame"/> must be queued (false when closing had already started).
    /// </summary>
    public bool Fail(WebSocketError error, long nowMs, out OutboundFrame closeFrame)
    {
        Ending.Error ??= error;
        _stopped = true;
        return StartClose(error.CloseCode, ClosePayload.Truncate(error.Message), nowMs, out closeFrame);
    }

    /// <summary>The error the connection failed with, if any.</summary>
    public WebSocketError? Error => _closing?.Error;

    // ------------------------------------------------------------------ closing and time

    /// <summary>
    /// Starts the closing handshake (§7.1.2) from <see cref="WebSocketState.Open"/>: true when
    /// <paramref name="closeFrame"/> must be queued (behind what is already queued; nothing is sent after it).
    /// False, and nothing to queue, when closing had already started.
    /// </summary>
    public bool StartClose(ushort code, string? reason, long nowMs, out OutboundFrame closeFrame)
    {
        if (Interlocked.CompareExchange(ref _state, (int)WebSocketState.CloseSent, (int)WebSocketState.Open) != (int)WebSocketState.Open)
        {
            closeFrame = default;
            return false;
        }

        SetCloseDeadline(nowMs);
        closeFrame = CloseFrame(code, reason);
        return true;
    }

    private void SetCloseDeadline(long nowMs) =>
        Volatile.Write(ref Ending.DeadlineMs, nowMs + (long)_settings.CloseTimeout.TotalMilliseconds);

    private static OutboundFrame CloseFrame(ushort code, string? reason)
    {
        Span<byte> body = stackalloc byte[125];
        int n = ClosePayload.Write(body, code, reason);
        return OutboundFrame.Rent(Opcode.Close, body[..n]);
    }

    /// <summary>
    /// Checks the deadlines at <paramref name="nowMs"/>: a keepalive ping after <see cref="WebSocketProtocolSettings.KeepAliveInterval"/>
    /// of silence (returned in <paramref name="ping"/>), a failure when its pong does not come within
    /// <see cref="WebSocketProtocolSettings.KeepAliveTimeout"/>, an abort when the closing handshake outlives
    /// <see cref="WebSocketProtocolSettings.CloseTimeout"/>.
    /// </summary>
    public TickAction OnTick(long nowMs, out OutboundFrame ping)
    {
        ping = default;
        if (IsOpen && _settings.KeepAliveInterval is { } interval)
        {
            long pingSent = Volatile.Read(ref _pingSentMs);
            if (pingSent < 0)
            {
                if (nowMs - Volatile.Read(ref _lastReceiveMs) >= (long)interval.TotalMilliseconds)
                {
                    Volatile.Write(ref _pingSentMs, nowMs);
                    ping = OutboundFrame.Rent(Opcode.Ping, default);
                    return TickAction.SendPing;
                }
            }
            else if (nowMs - pingSent >= (long)_settings.KeepAliveTimeout.TotalMilliseconds)
            {
                Ending.Error ??= new WebSocketError(WebSocketCloseCode.AbnormalClosure, "Keepalive timeout: no pong from the peer");
                return RecordAbort("Keepalive timeout") ? TickAction.Abort : TickAction.None;
            }
        }

        if (_closing is { } closing && nowMs >= Volatile.Read(ref closing.DeadlineMs))
        {
            return RecordAbort("Closing handshake timed out") ? TickAction.Abort : TickAction.None;
        }

        return TickAction.None;
    }

    /// <summary>Records that the transport is being torn down, and why; true the first time only.</summary>
    public bool RecordAbort(string reason)
    {
        Closing closing = Ending;
        if (Interlocked.Exchange(ref closing.Aborted, 1) != 0)
        {
            return false;
        }

        closing.AbortReason ??= reason;
        return true;
    }

    /// <summary>Why the transport was torn down, if it was.</summary>
    public string? AbortReason => _closing?.AbortReason;

    /// <summary>The transport failed or ended without a close frame: <paramref name="reason"/> explains a 1006 (first one kept).</summary>
    public void RecordTransportEnd(string reason) => Ending.AbortReason ??= reason;

    /// <summary>The connection has ended: <see cref="WebSocketState.Closed"/>, and how (like the browser's CloseEvent).</summary>
    public WebSocketCloseStatus Complete()
    {
        Volatile.Write(ref _state, (int)WebSocketState.Closed);
        Closing c = Ending;
        if (c.Error is { } error)
        {
            return new WebSocketCloseStatus(c.FrameReceived ? c.ReceivedCode : error.CloseCode, error.Message, WasClean: false);
        }

        if (c.FrameReceived)
        {
            return new WebSocketCloseStatus(c.ReceivedCode, c.ReceivedReason, c.HandshakeComplete);
        }

        return new WebSocketCloseStatus(WebSocketCloseCode.AbnormalClosure, c.AbortReason ?? "Connection closed without a close frame", WasClean: false);
    }

    /// <summary>The reader is done: returns the message buffer and the inflater.</summary>
    public void ReleaseReceiveResources()
    {
        _afterDelivery = AfterDelivery.Nothing;
        _assembler?.Dispose();
    }

    // ------------------------------------------------------------------ sending

    /// <summary>
    /// Writes one queued frame as it goes on the wire: masked in the client role (§5.3), compressed when negotiated and
    /// worthwhile (a server without context takeover writes a prepared frame's shared compressed bytes), a pong with
    /// the oldest pending ping's payload. Frames after our close frame are dropped (§5.5.1). Returns the bytes written
    /// (0 when dropped). The caller still owns <paramref name="frame"/> and releases it.
    /// </summary>
    public int Write(IBufferWriter<byte> output, in OutboundFrame frame)
    {
        if (_closeWritten)
        {
            return 0;
        }

        _closeWritten = frame.Opcode == Opcode.Close;
        if (frame.Opcode == Opcode.Pong)
        {
            return WritePendingPong(output);
        }

        if (_sendCompressed && frame.Compress && frame.PayloadLength >= _settings.CompressionThreshold)
        {
            int compressed = WriteCompressed(output, frame);
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

    /// <summary>What was written has been handed to the transport: after our close went out following the peer's, the handshake is done (§7.1.4).</summary>
    public void OnFlushed()
    {
        if (_closeWritten)
        {
            Interlocked.CompareExchange(ref _state, (int)WebSocketState.Closed, (int)WebSocketState.CloseReceived);
        }
    }

    /// <summary>The writer is done: frees the compressor.</summary>
    public void ReleaseSendResources()
    {
        _compressor?.Dispose();
        _compressor = null;
    }

    private int WritePendingPong(IBufferWriter<byte> output)
    {
        Span<byte> payload = stackalloc byte[125];
        int length = Volatile.Read(ref _pongs)!.TakeFirst(payload);
        bool masked = Role == WebSocketRole.Client;
        FrameEncoder.WriteFrame(output, true, 0, Opcode.Pong, payload[..length], masked, masked ? NextMaskKey() : 0);
        return FrameHeader.GetEncodedLength(length, masked) + length;
    }

    /// <summary>
    /// Writes a whole message compressed (RFC 7692 §7.2.1, RSV1 on its only frame); -1 when compressing would not make
    /// it smaller. Without context takeover a server sends a prepared frame's shared compressed bytes (one compression per
    /// distinct window and level for every such connection); otherwise the message is compressed here, in queue order,
    /// by this connection's own compressor (context takeover) or a pooled one.
    /// </summary>
    private int WriteCompressed(IBufferWriter<byte> output, in OutboundFrame frame)
    {
        if (_sendResetContext && Role == WebSocketRole.Server && frame.Prepared is { } prepared)
        {
            if (prepared.GetCompressedFrame(_settings.CompressionLevel, _sendWindowBits, _settings.DeflatePool) is not { } shared)
            {
                return -1;
            }

            output.Write(shared.Span);
            return shared.Length;
        }

        DeflateCompressor compressor = _sendResetContext
            ? _settings.DeflatePool.RentCompressor(_settings.CompressionLevel, _sendWindowBits)
            : _compressor ??= new DeflateCompressor(_settings.CompressionLevel, _sendWindowBits);
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
                _settings.DeflatePool.Return(compressor);
            }
        }
    }

    private uint NextMaskKey()
    {
        // §5.3: a fresh, unpredictable key per frame, drawn from the random source 64 keys at a time.
        _maskKeys ??= new byte[256];
        if (_maskKeyIndex == 0)
        {
            _random!.Fill(_maskKeys);
        }

        uint key = BinaryPrimitives.ReadUInt32LittleEndian(_maskKeys.AsSpan(_maskKeyIndex));
        _maskKeyIndex = (_maskKeyIndex + 4) & 255;
        return key;
    }
}
