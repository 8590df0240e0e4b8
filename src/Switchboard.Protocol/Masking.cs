using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Switchboard.Protocol;

/// <summary>
/// Payload masking (RFC 6455 §5.3): <c>transformed[i] = original[i] XOR key[i mod 4]</c>.
/// Vectorized (Vector256, then Vector128, then 8 bytes, then a scalar tail) and resumable at any offset,
/// so a payload that arrives in pieces can be unmasked piece by piece.
/// </summary>
internal static class Masking
{
    /// <summary>
    /// Applies (or removes: XOR is its own inverse) the mask in place.
    /// <paramref name="maskKey"/> is the 4 key bytes read little-endian (wire order in memory);
    /// <paramref name="offset"/> is how many payload bytes were already processed before <paramref name="data"/>.
    /// Returns the offset to pass for the next piece.
    /// </summary>
    public static int Apply(Span<byte> data, uint maskKey, int offset)
    {
        int shift = offset & 3;
        // Rotate so that byte 0 of data lines up with key[offset mod 4] (little-endian lane order).
        uint key = BitOperations.RotateRight(maskKey, shift * 8);
        // .NET's supported platforms are little-endian: lane 0 of a uint is its low byte.

        ref byte start = ref MemoryMarshal.GetReference(data);
        int length = data.Length;
        int i = 0;

        if (Vector256.IsHardwareAccelerated && length >= Vector256<byte>.Count)
        {
            var k = Vector256.Create(key).AsByte();
            int last = length - Vector256<byte>.Count;
            for (; i <= last; i += Vector256<byte>.Count)
            {
                ref byte p = ref Unsafe.Add(ref start, i);
                (Vector256.LoadUnsafe(ref p) ^ k).StoreUnsafe(ref p);
            }
        }

        if (Vector128.IsHardwareAccelerated && length - i >= Vector128<byte>.Count)
        {
            var k = Vector128.Create(key).AsByte();
            int last = length - Vector128<byte>.Count;
            for (; i <= last; i += Vector128<byte>.Count)
            {
                ref byte p = ref Unsafe.Add(ref start, i);
                (Vector128.LoadUnsafe(ref p) ^ k).StoreUnsafe(ref p);
            }
        }

        ulong k64 = ((ulong)key << 32) | key;
        for (; i + 8 <= length; i += 8)
        {
            ref byte p = ref Unsafe.Add(ref start, i);
            Unsafe.WriteUnaligned(ref p, Unsafe.ReadUnaligned<ulong>(ref p) ^ k64);
        }

        // i is a multiple of 4 here only when length allowed whole blocks; the key phase is (i & 3) either way.
        for (; i < length; i++)
        {
            Unsafe.Add(ref start, i) ^= (byte)(key >> ((i & 3) * 8));
        }

        return (offset + length) & 3;
    }

    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/> and masks the copy.</summary>
    public static int CopyAndApply(ReadOnlySpan<byte> source, Span<byte> destination, uint maskKey, int offset)
    {
        source.CopyTo(destination);
        return Apply(destination[..source.Length], maskKey, offset);
    }
}
