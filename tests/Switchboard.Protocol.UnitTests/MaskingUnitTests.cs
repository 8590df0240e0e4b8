namespace Switchboard.Protocol.UnitTests;

public class MaskingUnitTests
{
    private static byte[] Reference(byte[] data, byte[] key, int offset) =>
        [.. data.Select((b, i) => (byte)(b ^ key[(i + offset) & 3]))];

    [Fact]
    public void Matches_the_rfc_definition_for_every_length_and_offset()
    {
        byte[] key = [0x37, 0xFA, 0x21, 0x3D];
        uint k = BitConverter.ToUInt32(key);
        var rng = new Random(1);
        for (int len = 0; len <= 200; len++)
        {
            for (int offset = 0; offset < 4; offset++)
            {
                byte[] data = new byte[len];
                rng.NextBytes(data);
                byte[] expected = Reference(data, key, offset);
                byte[] actual = (byte[])data.Clone();
                int next = Masking.Apply(actual, k, offset);
                Assert.Equal(expected, actual);
                Assert.Equal((offset + len) & 3, next);
            }
        }
    }

    [Fact]
    public void Resumes_at_any_offset_across_pieces()
    {
        byte[] key = [1, 2, 3, 4];
        uint k = BitConverter.ToUInt32(key);
        byte[] data = new byte[1000];
        new Random(2).NextBytes(data);
        byte[] expected = Reference(data, key, 0);
        for (int cut = 0; cut <= 100; cut++)
        {
            byte[] actual = (byte[])data.Clone();
            int off = Masking.Apply(actual.AsSpan(0, cut), k, 0);
            off = Masking.Apply(actual.AsSpan(cut, 333), k, off);
            Masking.Apply(actual.AsSpan(cut + 333), k, off);
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void Rfc_5_7_masked_hello()
    {
        byte[] data = "Hello"u8.ToArray();
        Masking.Apply(data, Frames.Key, 0);
        Assert.Equal(Frames.Hex("7f 9f 4d 51 58"), data);
    }
}
