using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text.Unicode;

namespace Switchboard.Protocol;

/// <summary>
/// Whole-buffer UTF-8 validation with the "lookup" algorithm of Keiser and Lemire ("Validating UTF-8 in less than
/// one instruction per byte", 2021): every byte pair is classified by three 16-entry table lookups on nibbles
/// (PSHUFB), whose AND is non-zero exactly for the invalid two-byte patterns; the 3- and 4-byte sequences are
/// checked by where continuations must be. 32 bytes per step with AVX2, ASCII blocks skipped; without AVX2 the
/// runtime's <see cref="Utf8.IsValid(ReadOnlySpan{byte})"/>.
/// </summary>
internal static class Utf8Lookup
{
    // Error bits of the byte-pair classification (byte 1 = previous byte, byte 2 = current byte).
    private const byte TooShort = 1 << 0;    // 11______ 0_______ or 11______ 11______: a lead not followed by a continuation
    private const byte TooLong = 1 << 1;     // 0_______ 10______: a continuation after ASCII
    private const byte Overlong3 = 1 << 2;   // 11100000 100_____
    private const byte TooLarge = 1 << 3;    // 11110100 1001____ and above: beyond U+10FFFF
    private const byte Surrogate = 1 << 4;   // 11101101 101_____: U+D800..U+DFFF
    private const byte Overlong2 = 1 << 5;   // 1100000_ 10______
    private const byte TooLarge1000 = 1 << 6; // 11110101+ 1000____
    private const byte Overlong4 = 1 << 6;   // 11110000 1000____
    private const byte TwoConts = 1 << 7;    // 10______ 10______: legal only inside a 3- or 4-byte sequence
    private const byte Carry = TooShort | TooLong | TwoConts;

    /// <summary>True when <paramref name="data"/> is valid UTF-8 made of complete sequences.</summary>
    public static bool IsValid(ReadOnlySpan<byte> data)
    {
        // All ASCII (most chat): the runtime's check, which stops at the first non-ASCII byte otherwise.
        if (System.Text.Ascii.IsValid(data))
        {
            return true;
        }

        return Avx2.IsSupported && data.Length >= 64 ? IsValidAvx2(data) : Utf8.IsValid(data);
    }

    private static bool IsValidAvx2(ReadOnlySpan<byte> data)
    {
        Vector256<byte> byte1High = Vector256.Create(
            TooLong, TooLong, TooLong, TooLong, TooLong, TooLong, TooLong, TooLong,
            TwoConts, TwoConts, TwoConts, TwoConts,
            (byte)(TooShort | Overlong2), TooShort, (byte)(TooShort | Overlong3 | Surrogate), (byte)(TooShort | TooLarge | TooLarge1000 | Overlong4),
            TooLong, TooLong, TooLong, TooLong, TooLong, TooLong, TooLong, TooLong,
            TwoConts, TwoConts, TwoConts, TwoConts,
            (byte)(TooShort | Overlong2), TooShort, (byte)(TooShort | Overlong3 | Surrogate), (byte)(TooShort | TooLarge | TooLarge1000 | Overlong4));
        const byte L0 = Carry | Overlong3 | Overlong2 | Overlong4, L1 = Carry | Overlong2, L4 = Carry | TooLarge;
        const byte LL = Carry | TooLarge | TooLarge1000, LD = Carry | TooLarge | TooLarge1000 | Surrogate;
        Vector256<byte> byte1Low = Vector256.Create(
            L0, L1, Carry, Carry, L4, LL, LL, LL, LL, LL, LL, LL, LL, LD, LL, LL,
            L0, L1, Carry, Carry, L4, LL, LL, LL, LL, LL, LL, LL, LL, LD, LL, LL);
        const byte H8 = TooLong | Overlong2 | TwoConts | Overlong3 | TooLarge1000 | Overlong4;
        const byte H9 = TooLong | Overlong2 | TwoConts | Overlong3 | TooLarge;
        const byte HA = TooLong | Overlong2 | TwoConts | Surrogate | TooLarge;
        Vector256<byte> byte2High = Vector256.Create(
            TooShort, TooShort, TooShort, TooShort, TooShort, TooShort, TooShort, TooShort, H8, H9, HA, HA, TooShort, TooShort, TooShort, TooShort,
            TooShort, TooShort, TooShort, TooShort, TooShort, TooShort, TooShort, TooShort, H8, H9, HA, HA, TooShort, TooShort, TooShort, TooShort);
        // The last three bytes of a block may not start a sequence longer than what is left of the block.
        Vector256<byte> maxValue = Vector256.Create(
            (byte)0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xEF, 0xDF, 0xBF);

        ref byte start = ref MemoryMarshal.GetReference(data);
        nuint length = (nuint)data.Length;
        Vector256<byte> error = Vector256<byte>.Zero, previous = Vector256<byte>.Zero, previousIncomplete = Vector256<byte>.Zero;
        nuint i = 0;
        bool ascii = true;
        while (i + 32 <= length)
        {
            if (ascii && i + 128 <= length)
            {
                // After an ASCII block (the common case for chat), try four more at once: nothing to classify.
                Vector256<byte> fourth = Vector256.LoadUnsafe(ref start, i + 96);
                if ((Vector256.LoadUnsafe(ref start, i) | Vector256.LoadUnsafe(ref start, i + 32) | Vector256.LoadUnsafe(ref start, i + 64) | fourth)
                    .ExtractMostSignificantBits() == 0)
                {
                    error |= previousIncomplete;
                    previousIncomplete = Vector256<byte>.Zero;
                    previous = fourth;
                    i += 128;
                    continue;
                }
            }

            Vector256<byte> input = Vector256.LoadUnsafe(ref start, i);
            ascii = input.ExtractMostSignificantBits() == 0;
            if (ascii)
            {
                error |= previousIncomplete; // ASCII after a sequence that needed more bytes
                previousIncomplete = Vector256<byte>.Zero;
            }
            else
            {
                error |= CheckBlock(input, previous, byte1High, byte1Low, byte2High);
                previousIncomplete = Avx2.SubtractSaturate(input, maxValue);
            }

            previous = input;
            i += 32;
        }

        // The last, partial (maybe empty) block, padded with ASCII zeros: a sequence cut short by the end, here or at
        // the end of the previous block, shows up as an error.
        Span<byte> last = stackalloc byte[32];
        last.Clear();
        data[(int)i..].CopyTo(last);
        error |= CheckBlock(Vector256.Create<byte>(last), previous, byte1High, byte1Low, byte2High);

        return error == Vector256<byte>.Zero;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> CheckBlock(Vector256<byte> input, Vector256<byte> previous, Vector256<byte> byte1High, Vector256<byte> byte1Low, Vector256<byte> byte2High)
    {
        Vector256<byte> lowNibble = Vector256.Create((byte)0x0F);
        Vector256<byte> carried = Avx2.Permute2x128(previous, input, 0x21); // previous's high lane, input's low lane
        Vector256<byte> prev1 = Avx2.AlignRight(input, carried, 15);
        Vector256<byte> prev2 = Avx2.AlignRight(input, carried, 14);
        Vector256<byte> prev3 = Avx2.AlignRight(input, carried, 13);

        Vector256<byte> special =
            Avx2.Shuffle(byte1High, Avx2.ShiftRightLogical(prev1.AsUInt16(), 4).AsByte() & lowNibble)
            & Avx2.Shuffle(byte1Low, prev1 & lowNibble)
            & Avx2.Shuffle(byte2High, Avx2.ShiftRightLogical(input.AsUInt16(), 4).AsByte() & lowNibble);

        // A continuation must follow a 3-byte lead two bytes back, or a 4-byte lead three bytes back; there, and
        // only there, two continuations in a row (the TwoConts bit) are correct.
        Vector256<byte> mustBeContinuation = Avx2.SubtractSaturate(prev2, Vector256.Create((byte)(0xE0 - 0x80)))
            | Avx2.SubtractSaturate(prev3, Vector256.Create((byte)(0xF0 - 0x80)));
        return (mustBeContinuation & Vector256.Create((byte)0x80)) ^ special;
    }
}
