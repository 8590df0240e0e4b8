using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using Switchboard.Protocol;

namespace Switchboard.WebSockets;

/// <summary>The read loop: transport bytes into the protocol, its events to the handler, in order.</summary>
public sealed partial class WebSocketConnection
{
    private Channel<ReceivedMessage>? _receiveChannel;
    private volatile bool _receiveWaiting; // pull mode: a ReceiveAsync call waits on an empty queue
    private TaskCompletionSource? _handledBeforeFailure; // pull mode: set while a failure waits for the application

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

    /// <summary>Starts the read loop in pull mode: messages are buffered (bounded) for <see cref="ReceiveAsync"/>.</summary>
    public void StartReceiving()
    {
        _receiveChannel = Channel.CreateBounded<ReceivedMessage>(new BoundedChannelOptions(Math.Max(1, Options.ReceiveQueueCapacity))
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
        ArgumentNullException.ThrowIfNull(handler);
        if (Interlocked.Exchange(ref _running, 1) != 0)
        {
            throw new InvalidOperationException("RunAsync was already called for this connection.");
        }

        WebSocketProtocol protocol = Protocol;
        protocol.DeliverChunks = handler.StreamsMessages;
        protocol.Open(NowMs);
        _heartbeat.Register(this);
        Options.Metrics?.Opened();
        using CancellationTokenRegistration reg = cancellationToken.Register(static s => ((WebSocketConnection)s!).Abort("Cancelled"), this);
        try
        {
            if (await InvokeAsync(handler, static (h, c, _) => h.OnOpenAsync(c), default(ProtocolEvent)).ConfigureAwait(false))
            {
                // The read loop, in this method rather than one of its own: one state machine per connection, not two.
                PipeReader input = Transport.Input;
                while (true)
                {
                    ReadResult result = await input.ReadAsync().ConfigureAwait(false);
                    ReadOnlySequence<byte> buffer = result.Buffer;
                    long now = NowMs;
                    if (!buffer.IsEmpty)
                    {
                        protocol.OnBytesReceived(now);
                    }

                    SequencePosition consumed = buffer.Start;
                    if (protocol.ReceiveStopped)
                    {
                        consumed = buffer.End; // after the close handshake (client waiting for TCP close): discard
                    }
                    else
                    {
                        while (true)
                        {
                            var reader = new SequenceReader<byte>(buffer.Slice(consumed));
                            if (!protocol.TryReceive(ref reader, now, out ProtocolEvent ev))
                            {
                                consumed = reader.Position;
                                break;
                            }

                            consumed = reader.Position;

                            // ev.Payload points into buffer (or the protocol's message buffer), valid until the next
                            // TryReceive or AdvanceTo below. Sends made while the event is handled synchronously on this
                            // thread are written after the batch: one flush per read.
                            _outbound.BeginDeferring();
                            ValueTask<bool> handled;
                            try
                            {
                                handled = HandleEventAsync(handler, ev);
                            }
                            finally
                            {
                                OutboundQueue.EndDeferring();
                            }

                            if (!handled.IsCompleted)
                            {
                                _outbound.RunDeferred(); // the handler went asynchronous: do not hold its replies back meanwhile
                            }

                            if (!await handled.ConfigureAwait(false))
                            {
                                consumed = buffer.End;
                                break;
                            }
                        }

                        _outbound.RunDeferred();
                    }

                    Options.Metrics?.Received(buffer.Slice(buffer.Start, consumed).Length);
                    input.AdvanceTo(consumed, buffer.End);

                    if (result.IsCanceled || result.IsCompleted || protocol.ShouldCloseTransport)
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
            protocol.RecordTransportEnd(ex.Message);
        }
        finally
        {
            _outbound.RunDeferred(); // e.g. the read loop failed right after queueing a reply
            _heartbeat.Unregister(this);
            protocol.ReleaseReceiveResources();
        }

        return await EndAsync(handler).ConfigureAwait(false);
    }

    /// <summary>
    /// After the read loop: flushes the close frame, completes the transport, tells the handler. A method of its own so
    /// that its state is created when the connection ends, not kept in every open connection's suspended read loop.
    /// </summary>
    private async Task<WebSocketCloseStatus> EndAsync(WebSocketHandler handler)
    {
        try
        {
            await _outbound.CompleteAsync().WaitAsync(Options.CloseTimeout, Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Abort("Timed out flushing the close frame");
        }

        await Transport.Input.CompleteAsync().ConfigureAwait(false);
        (Transport as IDisposable)?.Dispose();

        WebSocketCloseStatus status = Protocol.Complete();
        Options.Metrics?.Closed(Options.EndpointName, status.Code);
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
        CompletionSource.TrySetResult(status);
        _ended = true;
        _outbound.SignalDrained();
        return status;
    }

    /// <summary>Handles one protocol event; false when reading must stop.</summary>
    private ValueTask<bool> HandleEventAsync(WebSocketHandler handler, in ProtocolEvent ev)
    {
        switch (ev.Kind)
        {
            case ProtocolEventKind.Message:
                Options.Metrics?.MessageReceived();
                return InvokeAsync(handler, static (h, c, e) => h.OnMessageAsync(c, new WebSocketMessage(e.MessageType, e.Payload)), ev);

            case ProtocolEventKind.MessageChunk:
                if (ev.EndOfMessage)
                {
                    Options.Metrics?.MessageReceived();
                }

                return InvokeAsync(handler, static (h, c, e) => h.OnMessageChunkAsync(c, e.MessageType, e.Payload, e.EndOfMessage), ev);

            case ProtocolEventKind.Ping:
                if (ev.HasReply)
                {
                    _outbound.EnqueueControl(WebSocketProtocol.ReplyTo(ev));
                }

                return new ValueTask<bool>(true);

            case ProtocolEventKind.Pong:
                // Any inbound byte already counted as liveness; unsolicited pongs need no answer (RFC 6455 §5.5.3).
                return InvokeAsync(handler, static (h, c, e) => h.OnPongAsync(c, e.Payload), ev);

            case ProtocolEventKind.Close:
                if (ev.HasReply)
                {
                    _outbound.EnqueueControl(WebSocketProtocol.ReplyTo(ev));
                }

                return new ValueTask<bool>(false);

            default:
                return FailAsync(handler, new WebSocketError(ev.CloseCode, ev.Reason ?? "Protocol error"));
        }
    }

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
            await handled.Task.WaitAsync(Options.CloseTimeout, Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // the application does not read: fail anyway
        }
    }

    /// <summary>Fails the connection with <paramref name="error"/> and tells the handler. Always false (stop reading).</summary>
    private async ValueTask<bool> FailAsync(WebSocketHandler handler, WebSocketError error)
    {
        if (error.CloseCode is not (WebSocketCloseCode.InternalError or WebSocketCloseCode.AbnormalClosure))
        {
            await WaitForApplicationAsync().ConfigureAwait(false); // a protocol violation by the peer (not our own failure)
        }

        Log.Failed(_logger, Id, error.CloseCode, error.Message);
        if (Protocol.Fail(error, NowMs, out OutboundFrame closeFrame))
        {
            _outbound.EnqueueControl(closeFrame);
        }

        try
        {
            await handler.OnErrorAsync(this, error).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.HandlerFailed(_logger, Id, ex);
        }

        return false;
    }

    /// <summary>The handler threw: log it and fail the connection with 1011 (the exception is never sent). Always false.</summary>
    private ValueTask<bool> HandlerFailedAsync(WebSocketHandler handler, Exception ex)
    {
        Log.HandlerFailed(_logger, Id, ex);
        return FailAsync(handler, new WebSocketError(WebSocketCloseCode.InternalError, "Internal error", ex));
    }

    private async ValueTask<bool> InvokeAsync(WebSocketHandler handler, Func<WebSocketHandler, WebSocketConnection, ProtocolEvent, ValueTask> call, ProtocolEvent ev)
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

    private sealed class ChannelHandler(Channel<ReceivedMessage> channel) : WebSocketHandler
    {
        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message) =>
            channel.Writer.WriteAsync(new ReceivedMessage(message.Type, message.ToArray()));
    }
}
