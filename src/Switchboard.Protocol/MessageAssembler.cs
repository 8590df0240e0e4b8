using System.Buffers;
using Switchboard.Protocol.Extensions;

namespace Switchboard.Protocol;

/// <summary>
/// The receive side's message buffer: joins the fragments of a message, and inflates a compressed one
/// (RFC 7692 §7.2.2) as its pieces arrive, with the size limit applied to the inflated bytes (the buffer never
/// grows past it, so a small message that would inflate to gigabytes fails having allocated at most the limit) and
/// UTF-8 checked on inflated text. The buffer is rented per message: an idle connection holds none.
/// </summary>
internal sealed class MessageAssembler
{
    private readonly long _maxMessageSize;
    private readonly bool _resetContext; // the peer compresses without context takeover: a pooled inflater per message
    private byte[]? _buffer;
    private int _length;
    private long _inflatedLength;
    private Utf8Validator _inflatedUtf8;
    private DeflateDecompressor? _inflater;

    private readonly DeflatePool _pool;

    public MessageAssembler(long maxMessageSize, DeflatePool pool, bool resetContext)
    {
        _pool = pool;
        _maxMessageSize = maxMessageSize;
        _resetContext = resetContext;
    }

    /// <summary>A message is being assembled.</summary>
    public bool Active { get; private set; }

    /// <summary>The assembled (or inflated) message's type.</summary>
    public MessageType Type { get; private set; }

    /// <summary>The bytes assembled since the last <see cref="Clear"/> or <see cref="TakeChunk"/>.</summary>
    public ReadOnlySequence<byte> Content => new(_buffer ?? [], 0, _length);

    /// <summary>Bytes waiting in <see cref="Content"/>.</summary>
    public int Length => _length;

    public void Begin(MessageType type, bool compressed)
    {
        Active = true;
        Type = type;
        _length = 0;
        if (compressed)
        {
            _inflatedLength = 0;
            _inflatedUtf8.Reset();
            _inflater ??= _resetContext ? _pool.RentDecompressor() : new DeflateDecompressor();
        }
    }

    /// <summary>Appends an uncompressed piece (already checked by the decoder).</summary>
    public void Append(ReadOnlySequence<byte> piece)
    {
        int needed = checked(_length + (int)piece.Length);
        if (_buffer is null || _buffer.Length < needed)
        {
            int size = (int)Math.Min(Math.Max(needed, Math.Max(4096, (_buffer?.Length ?? 0) * 2L)), Math.Max(needed, _maxMessageSize));
            Grow(size);
        }

        piece.CopyTo(_buffer.AsSpan(_length));
        _length = needed;
    }

    /// <summary>Inflates a compressed piece; with <paramref name="end"/>, also the message's removed tail (§7.2.2).</summary>
    public FrameViolation Inflate(ReadOnlySequence<byte> piece, bool end)
    {
        foreach (ReadOnlyMemory<byte> segment in piece)
        {
            FrameViolation v = Inflate(segment.Span, finish: false);
            if (v != FrameViolation.None)
            {
                return v;
            }
        }

        if (!end)
        {
            return FrameViolation.None;
        }

        FrameViolation last = Inflate(default, finish: true);
        if (last == FrameViolation.None && Type == MessageType.Text && !_inflatedUtf8.IsComplete)
        {
            return FrameViolation.InvalidUtf8;
        }

        if (last == FrameViolation.None)
        {
            if (_resetContext)
            {
                _pool.Return(_inflater!);
                _inflater = null;
            }
            else
            {
                _inflater!.EndMessage(resetContext: false);
            }
        }

        return last;
    }

    /// <summary>A streamed chunk was delivered: the buffer is reused for the next one.</summary>
    public void TakeChunk() => _length = 0;

    /// <summary>The message was delivered or abandoned: the buffer goes back to the pool.</summary>
    public void Clear()
    {
        Active = false;
        _length = 0;
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }

    /// <summary>Gives back everything, the inflater included (mid-message or with context takeover its state is not reusable).</summary>
    public void Dispose()
    {
        Clear();
        _inflater?.Dispose();
        _inflater = null;
    }

    private FrameViolation Inflate(ReadOnlySpan<byte> input, bool finish)
    {
        DeflateDecompressor inflater = _inflater!;
        int tail = 0;
        while (true)
        {
            long allowance = _maxMessageSize - _inflatedLength;
            int free = (_buffer?.Length ?? 0) - _length;
            if (free == 0)
            {
                // Grow geometrically, but never past the limit (+1 byte, to notice a message that exceeds it).
                long size = Math.Min(Math.Max(4096, (_buffer?.Length ?? 0) * 2L), _length + allowance + 1);
                Grow((int)Math.Min(size, Array.MaxLength));
                free = _buffer!.Length - _length;
            }

            Span<byte> destination = _buffer.AsSpan(_length, (int)Math.Min(free, allowance + 1));
            int consumed = 0, written;
            InflateStatus status = finish
                ? inflater.Finish(destination, ref tail, out written)
                : inflater.Inflate(input, destination, out consumed, out written);
            if (written > allowance)
            {
                return FrameViolation.MessageTooBig;
            }

            if (Type == MessageType.Text && !_inflatedUtf8.Append(destination[..written]))
            {
                return FrameViolation.InvalidUtf8;
            }

            _length += written;
            _inflatedLength += written;
            if (status == InflateStatus.InvalidData)
            {
                return FrameViolation.InvalidCompressedData;
            }

            input = input[consumed..];
            if (status == InflateStatus.NeedsInput)
            {
                return FrameViolation.None;
            }
        }
    }

    private void Grow(int size)
    {
        byte[] bigger = ArrayPool<byte>.Shared.Rent(size);
        if (_buffer is not null)
        {
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = bigger;
    }
}
