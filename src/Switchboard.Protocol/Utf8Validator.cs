using System.Text.Unicode;

namespace Switchboard.Protocol;

/// <summary>
/// Incremental UTF-8 validation for text messages (RFC 6455 §8.1, RFC 3629), fed piece by piece across
/// frames. Reports an invalid sequence as soon as the bytes seen prove it invalid (e.g. <c>ED A0</c> fails
/// at <c>A0</c>, an F5 byte fails at once), not at the end of the frame or message.
/// The bulk of a piece is checked 32 bytes at a time (<see cref="Utf8Lookup"/>, the runtime's
/// <see cref="Utf8.IsValid(ReadOnlySpan{byte})"/> without AVX2); a byte-wise DFA (Björn Höhrmann's) carries an
/// incomplete sequence across piece boundaries.
/// </summary>
internal struct Utf8Validator
{
    private const byte Accept = 0;
    private const byte Reject = 12;

    // Höhrmann's DFA: 256 byte classes, then transitions indexed by state (a multiple of 12) + class.
    private static ReadOnlySpan<byte> Table =>
    [
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,
        7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7, 7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,
        8,8,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
        10,3,3,3,3,3,3,3,3,3,3,3,3,4,3,3, 11,6,6,6,5,8,8,8,8,8,8,8,8,8,8,8,
        0,12,24,36,60,96,84,12,12,12,48,72, 12,12,12,12,12,12,12,12,12,12,12,12,
        12,0,12,12,12,12,12,0,12,0,12,12, 12,24,12,12,12,12,12,24,12,24,12,12,
        12,12,12,12,12,12,12,24,12,12,12,12, 12,24,12,12,12,12,12,12,12,24,12,12,
        12,12,12,12,12,12,12,36,12,36,12,12, 12,36,12,12,12,12,12,36,12,36,12,12,
        12,36,12,12,12,12,12,12,12,12,12,12,
    ];

    private byte _state;

    /// <summary>True when every byte so far forms complete, valid sequences (a message may end here).</summary>
    public readonly bool IsComplete => _state == Accept;

    /// <summary>True once an invalid sequence was seen.</summary>
    public readonly bool IsInvalid => _state == Reject;

    /// <summary>Forgets everything (start of a new message).</summary>
    public void Reset() => _state = Accept;

    /// <summary>
    /// Feeds the next bytes. Returns false as soon as they cannot be part of valid UTF-8
    /// whatever follows; an incomplete sequence at the end is carried into the next call.
    /// </summary>
    public bool Append(ReadOnlySpan<byte> data)
    {
        if (_state == Reject)
        {
            return false;
        }

        int i = 0;
        while (_state != Accept && i < data.Length)
        {
            if (!Step(data[i++]))
            {
                return false;
            }
        }

        if (i == data.Length)
        {
            return true;
        }

        ReadOnlySpan<byte> rest = data[i..];

        // Split off a possibly incomplete last sequence: scan back over at most 3 continuation bytes to a lead byte.
        int tail = rest.Length;
        for (int k = rest.Length - 1; k >= 0 && k >= rest.Length - 4; k--)
        {
            byte b = rest[k];
            if ((b & 0xC0) != 0x80)
            {
                if (b >= 0xC0)
                {
                    tail = k;
                }

                break;
            }
        }

        if (!Utf8Lookup.IsValid(rest[..tail]))
        {
            _state = Reject;
            return false;
        }

        foreach (byte b in rest[tail..])
        {
            if (!Step(b))
            {
                return false;
            }
        }

        return true;
    }

    private bool Step(byte b)
    {
        ReadOnlySpan<byte> table = Table;
        _state = table[256 + _state + table[b]];
        return _state != Reject;
    }
}
