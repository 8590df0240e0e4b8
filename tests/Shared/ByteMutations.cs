namespace Switchboard.Tests.Shared;

/// <summary>Small random damage to an input for the fuzz tests: a flipped bit, a few bytes cut out, a byte inserted.</summary>
public static class ByteMutations
{
    public static void Apply(List<byte> bytes, Random random, int maxMutations)
    {
        for (int m = random.Next(maxMutations + 1); m > 0 && bytes.Count > 0; m--)
        {
            int at = random.Next(bytes.Count);
            switch (random.Next(3))
            {
                case 0: bytes[at] ^= (byte)(1 << random.Next(8)); break;
                case 1: bytes.RemoveRange(at, Math.Min(bytes.Count - at, random.Next(1, 8))); break;
                default: bytes.Insert(at, (byte)random.Next(256)); break;
            }
        }
    }
}
