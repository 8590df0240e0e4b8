using System.Buffers;
using System.Buffers.Binary;

namespace Switchboard.Protocol;

/// <summary>Outcome of <see cref="FrameHeader.TryRead"/>.</summary>
public enum FrameHeaderStatus
{
    /// <summary>A whole header was read and the reader advanced past it.</summary>
    Complete,
    /// <summary>Not enough bytes yet; the reader was not advanced.</summary>
    NeedMoreData,
    /// <summary>A 64-bit length with its most significant bit set (§5.2); the reader was not advanced.</summary>
    LengthOverflow,
}

/// <summary>
/// A WebSocket frame header (RFC 6455 §5.2):
/// FIN, RSV1-3, opcode, MASK, payload length (7, 7+16 or 7+64 bits) and the masking key.
/// </summary>
public readonly struct FrameHeader
{
    /// <summary>The largest possible header: 2 + 8 (extended length) + 4 (masking key).</summary>
    public const int MaxLength = 14;

    /// <summary>Creates a header.</summary>
    public FrameHeader(bool fin, byte rsv, Opcode opcode, long payloadLength, bool masked, uint maskKey)
    {
        Fin = fin;
        Rsv = rsv;
        Opcode = opcode;
        PayloadLength = payloadLength;
        Masked = masked;
        MaskKey = maskKey;
    }

    /// <summary>The FIN bit: this is the final fragment of a message.</summary>
    public bool Fin { get; }
    /// <summary>RSV1..RSV3 as a 3-bit value (RSV1 = 0b100).</summary>
    public byte Rsv { get; }
    /// <summary>The opcode (may be a reserved value; <see cref="OpcodeExtensions.IsDefined"/> tells).</summary>
    public Opcode Opcode { get; }
    /// <summary>The payload length in bytes.</summary>
    public long PayloadLength { get; }
    /// <summary>The MASK bit.</summary>
    public bool Masked { get; }
    /// <summary>The masking key, as the 4 wire bytes read in memory order (see <see cref="Masking"/>).</summary>
    public uint MaskKey { get; }

    /// <summary>The number of bytes this header takes on the wire.</summary>
    public int EncodedLength => GetEncodedLength(PayloadLength, Masked);

    /// <summary>Header size for a payload of <paramref name="payloadLength"/> bytes.</summary>
    public static int GetEncodedLength(long payloadLength, bool masked) =>
        (payloadLength <= 125 ? 2 : payloadLength <= ushort.MaxValue ? 4 : 10) + (masked ? 4 : 0);

    /// <summary>
    /// Reads a header. Never throws for short input: returns <see cref="FrameHeaderStatus.NeedMoreData"/>
    /// and leaves the reader where it was. Only advances on <see cref="FrameHeaderStatus.Complete"/>.
    /// </summary>
    public static FrameHeaderStatus TryRead(ref SequenceReader<byte> reader, out FrameHeader header)
    {
        header = default;
        Span<byte> buf = stackalloc byte[MaxLength];
        int available = (int)Math.Min(reader.Remaining, MaxLength);
        if (available < 2)
        {
            return FrameHeaderStatus.NeedMoreData;
        }

        buf = buf[..available];
        if (!reader.TryCopyTo(buf))
        {
            return FrameHeaderStatus.NeedMoreData;
        }

        byte b0 = buf[0], b1 = buf[1];
        bool masked = (b1 & 0x80) != 0;
        int len7 = b1 & 0x7F;
        int needed = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0);
        if (available < needed)
        {
            return FrameHeaderStatus.NeedMoreData;
        }

        long length;
        int pos = 2;
        if (len7 == 126)
        {
            length = BinaryPrimitives.ReadUInt16BigEndian(buf[2..]);
            pos = 4;
        }
        else if (len7 == 127)
        {
            ulong l = BinaryPrimitives.ReadUInt64BigEndian(buf[2..]);
            if ((l & 0x8000_0000_0000_0000UL) != 0)
            {
                return FrameHeaderStatus.LengthOverflow; // §5.2: "the most significant bit MUST be 0"
            }

            length = (long)l;
            pos = 10;
        }
        else
        {
            length = len7;
        }

        uint key = masked ? BinaryPrimitives.ReadUInt32LittleEndian(buf[pos..]) : 0;
        header = new FrameHeader((b0 & 0x80) != 0, (byte)((b0 >> 4) & 0x7), (Opcode)(b0 & 0xF), length, masked, key);
        reader.Advance(needed);
        return FrameHeaderStatus.Complete;
    }

    /// <summary>Writes this header into <paramref name="destination"/> and returns the bytes written.</summary>
    public int Write(Span<byte> destination) => Write(destination, Fin, Rsv, Opcode, PayloadLength, Masked, MaskKey);

    /// <summary>Writes a header (shortest length encoding, §5.2) and returns the bytes written.</summary>
    public static int Write(Span<byte> destination, bool fin, byte rsv, Opcode opcode, long payloadLength, bool masked, uint maskKey)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        int needed = GetEncodedLength(payloadLength, masked);
        if (destination.Length < needed)
        {
            throw new ArgumentException("Destination is too small for the frame header.", nameof(destination));
        }

        destination[0] = (byte)((fin ? 0x80 : 0) | ((rsv & 0x7) << 4) | ((byte)opcode & 0xF));
        byte maskBit = masked ? (byte)0x80 : (byte)0;
        int pos;
        if (payloadLength <= 125)
        {
            destination[1] = (byte)(maskBit | (byte)payloadLength);
            pos = 2;
        }
        else if (payloadLength <= ushort.MaxValue)
        {
            destination[1] = (byte)(maskBit | 126);
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payloadLength);
            pos = 4;
        }
        else
        {
            destination[1] = (byte)(maskBit | 127);
            BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payloadLength);
            pos = 10;
        }

        if (masked)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(destination[pos..], maskKey);
            pos += 4;
        }

        return pos;
    }
}
