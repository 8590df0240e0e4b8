using System.Buffers;
using System.Runtime.InteropServices;

namespace Switchboard.Protocol;

/// <summary>Settings for a <see cref="FrameDecoder"/>.</summary>
public sealed class FrameDecoderOptions
{
    /// <summary>This side's role: a server requires masked frames, a client forbids them (§5.1).</summary>
    public WebSocketRole Role { get; init; } = WebSocketRole.Server;

    /// <summary>
    /// The largest message (sum of its frames' payloads) accepted; larger fails with 1009, decided from the
    /// length header before the payload arrives. Default 16 MiB.
    /// </summary>
    public long MaxMessageSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>RSV bits a negotiated extension gives meaning to (RSV1 = 0b100). None by default (§5.2).</summary>
    public byte AllowedReservedBits { get; init; }
}

/// <summary>
/// The receive side of RFC 6455, sans-I/O: bytes in, events out. Enforces every receive rule with its close
/// code (framing, masking, reserved bits and opcodes, control-frame limits, fragmentation, close payloads,
/// UTF-8 in text messages, the message size limit). Processes frames strictly in order, so every event before
/// a violation is delivered before the <see cref="FrameEventKind.ProtocolError"/> event.
/// </summary>
public sealed class FrameDecoder
{
    private readonly bool _expectMasked;
    private readonly long _maxMessageSize;
    private readonly byte _allowedRsv;

    private bool _inPayload;       // a data frame's header was read; its payload is still arriving
    private long _remaining;       // payload bytes of the current data frame not yet delivered
    private bool _frameFin;
    private bool _frameMasked;
    private uint _maskKey;
    private int _maskOffset;

    private bool _inMessage;       // a data message started and its final frame has not ended
    private MessageType _messageType;
    private bool _messageCompressed; // RSV1 on the first frame: permessage-deflate (RFC 7692 §6)
    private long _messageLength;
    private Utf8Validator _utf8;
    private bool _faulted;

    /// <summary>Creates a decoder.</summary>
    public FrameDecoder(FrameDecoderOptions options)
    {
        _expectMasked = options.Role == WebSocketRole.Server;
        _maxMessageSize = options.MaxMessageSize;
        _allowedRsv = options.AllowedReservedBits;
    }

    /// <summary>True once a protocol error was reported.</summary>
    public bool IsFaulted => _faulted;

    /// <summary>True while a fragmented data message is incomplete.</summary>
    public bool InMessage => _inMessage;

    /// <summary>
    /// Decodes the next event from <paramref name="reader"/>. Data payloads are delivered in pieces as they
    /// arrive (never waiting for a whole frame), unmasked in place; control frames only once complete.
    /// Advances the reader past what the event consumed. Returns <see cref="DecodeStatus.NeedMoreData"/>
    /// (never an exception) when the input ends mid-header or mid-control-frame.
    /// </summary>
    public DecodeStatus Decode(ref SequenceReader<byte> reader, out FrameEvent ev)
    {
        if (_faulted)
        {
            throw new InvalidOperationException("The decoder reported a protocol error and accepts no more input.");
        }

        if (!_inPayload)
        {
            SequenceReader<byte> start = reader;
            FrameHeaderStatus hs = FrameHeader.TryRead(ref reader, out FrameHeader header);
            if (hs == FrameHeaderStatus.NeedMoreData)
            {
                ev = default;
                return DecodeStatus.NeedMoreData;
            }

            if (hs == FrameHeaderStatus.LengthOverflow)
            {
                return Fail(out ev, FrameViolation.InvalidPayloadLength);
            }

            if ((header.Rsv & ~_allowedRsv) != 0)
            {
                return Fail(out ev, FrameViolation.ReservedBits);
            }

            if (!header.Opcode.IsDefined())
            {
                return Fail(out ev, FrameViolation.ReservedOpcode);
            }

            if (header.Masked != _expectMasked)
            {
                return Fail(out ev, _expectMasked ? FrameViolation.UnmaskedClientFrame : FrameViolation.MaskedServerFrame);
            }

            if (header.Opcode.IsControl())
            {
                if (!header.Fin)
                {
                    return Fail(out ev, FrameViolation.FragmentedControlFrame);
                }

                if (header.PayloadLength > 125)
                {
                    return Fail(out ev, FrameViolation.ControlFrameTooLong);
                }

                if ((header.Rsv & 0x7) != 0)
                {
                    return Fail(out ev, FrameViolation.ReservedBitsOnControlFrame);
                }

                if (reader.Remaining < header.PayloadLength)
                {
                    reader = start; // wait for the whole control frame
                    ev = default;
                    return DecodeStatus.NeedMoreData;
                }

                return DecodeControl(ref reader, header, out ev);
            }

            if (header.Opcode == Opcode.Continuation)
            {
                if (!_inMessage)
                {
                    return Fail(out ev, FrameViolation.UnexpectedContinuation);
                }

                if ((header.Rsv & 0x4) != 0)
                {
                    return Fail(out ev, FrameViolation.CompressedContinuation);
                }
            }
            else
            {
                if (_inMessage)
                {
                    return Fail(out ev, FrameViolation.InterleavedMessage);
                }

                _inMessage = true;
                _messageType = (MessageType)header.Opcode;
                _messageCompressed = (header.Rsv & 0x4) != 0;
                _messageLength = 0;
                _utf8.Reset();
            }

            // A compressed message's limit applies to its inflated size (checked while inflating); its wire size may
            // exceed that by DEFLATE's framing overhead on incompressible data (5 bytes per stored block), no more.
            long wireLimit = _messageCompressed ? _maxMessageSize + (_maxMessageSize >> 8) + 64 : _maxMessageSize;
            if (header.PayloadLength > wireLimit - _messageLength)
            {
                return Fail(out ev, FrameViolation.MessageTooBig);
            }

            _messageLength += header.PayloadLength;
            _inPayload = true;
            _remaining = header.PayloadLength;
            _frameFin = header.Fin;
            _frameMasked = header.Masked;
            _maskKey = header.MaskKey;
            _maskOffset = 0;

            if (_remaining == 0)
            {
                return EndFrame(ReadOnlySequence<byte>.Empty, out ev);
            }
        }

        long available = Math.Min(reader.Remaining, _remaining);
        if (available == 0)
        {
            ev = default;
            return DecodeStatus.NeedMoreData;
        }

        ReadOnlySequence<byte> piece = reader.UnreadSequence.Slice(0, available);
        if (_frameMasked)
        {
            foreach (ReadOnlyMemory<byte> segment in piece)
            {
                _maskOffset = Masking.Apply(MemoryMarshal.AsMemory(segment).Span, _maskKey, _maskOffset);
            }
        }

        if (_messageType == MessageType.Text && !_messageCompressed)
        {
            foreach (ReadOnlyMemory<byte> segment in piece)
            {
                if (!_utf8.Append(segment.Span))
                {
                    return Fail(out ev, FrameViolation.InvalidUtf8);
                }
            }
        }

        reader.Advance(available);
        _remaining -= available;
        if (_remaining > 0)
        {
            ev = FrameEvent.Data(_messageType, piece, end: false, _messageCompressed);
            return DecodeStatus.Event;
        }

        return EndFrame(piece, out ev);
    }

    private DecodeStatus EndFrame(ReadOnlySequence<byte> piece, out FrameEvent ev)
    {
        _inPayload = false;
        bool end = _frameFin;
        if (end)
        {
            _inMessage = false;
            if (_messageType == MessageType.Text && !_messageCompressed && !_utf8.IsComplete)
            {
                return Fail(out ev, FrameViolation.InvalidUtf8);
            }
        }

        ev = FrameEvent.Data(_messageType, piece, end, _messageCompressed);
        return DecodeStatus.Event;
    }

    private DecodeStatus DecodeControl(ref SequenceReader<byte> reader, FrameHeader header, out FrameEvent ev)
    {
        ReadOnlySequence<byte> payload = reader.UnreadSequence.Slice(0, header.PayloadLength);
        if (header.Masked)
        {
            int offset = 0;
            foreach (ReadOnlyMemory<byte> segment in payload)
            {
                offset = Masking.Apply(MemoryMarshal.AsMemory(segment).Span, header.MaskKey, offset);
            }
        }

        reader.Advance(header.PayloadLength);
        switch (header.Opcode)
        {
            case Opcode.Ping:
                ev = FrameEvent.Control(FrameEventKind.Ping, payload);
                return DecodeStatus.Event;
            case Opcode.Pong:
                ev = FrameEvent.Control(FrameEventKind.Pong, payload);
                return DecodeStatus.Event;
            default:
                Span<byte> body = stackalloc byte[125];
                payload.CopyTo(body);
                body = body[..(int)payload.Length];
                switch (ClosePayload.TryParse(body, out ushort code, out string reason))
                {
                    case ClosePayloadError.TooShort:
                        return Fail(out ev, FrameViolation.ClosePayloadTooShort);
                    case ClosePayloadError.InvalidCode:
                        return Fail(out ev, FrameViolation.InvalidCloseCode);
                    case ClosePayloadError.InvalidReason:
                        return Fail(out ev, FrameViolation.InvalidCloseReason);
                }

                ev = FrameEvent.Close(code, reason, payload);
                return DecodeStatus.Event;
        }
    }

    private DecodeStatus Fail(out FrameEvent ev, FrameViolation violation)
    {
        _faulted = true;
        ev = FrameEvent.Error(violation);
        return DecodeStatus.Event;
    }
}
