using System.Buffers;

namespace Switchboard.Protocol;

/// <summary>
/// The pongs waiting to be written, in ping order: a ring of at most <see cref="Max"/> payloads. Past that, the
/// newest ping's payload replaces the last pending one (RFC 6455 §5.5.3 allows answering only the most recent ping),
/// so a ping flood from a peer that does not read costs constant memory. Locked: added by the read side, taken by
/// the writer; the control path is rare.
/// </summary>
internal sealed class PendingPongs
{
    /// <summary>Pongs waiting at most.</summary>
    public const int Max = 16;

    private readonly byte[] _payloads = new byte[Max * 125];
    private readonly int[] _lengths = new int[Max];
    private int _first;
    private int _count;

    /// <summary>Adds a pong; false when full (the last pending pong then carries this payload instead).</summary>
    public bool TryAdd(ReadOnlySequence<byte> payload)
    {
        lock (this)
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
    }

    /// <summary>Copies the oldest pending payload into <paramref name="destination"/> and removes it; its length.</summary>
    public int TakeFirst(Span<byte> destination)
    {
        lock (this)
        {
            int length = _lengths[_first];
            _payloads.AsSpan(_first * 125, length).CopyTo(destination);
            _first = (_first + 1) % Max;
            _count--;
            return length;
        }
    }
}
