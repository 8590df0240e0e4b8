using System.Text;
using System.Text.Unicode;

namespace Switchboard.Protocol.UnitTests;

/// <summary>The vectorized whole-buffer check agrees with the runtime's validator on every input.</summary>
public class Utf8LookupUnitTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    private static void Agrees(byte[] data) =>
        Assert.True(Utf8.IsValid(data) == Utf8Lookup.IsValid(data), $"disagreement on {data.Length} bytes: {Convert.ToHexString(data)}");

    private static string RandomText(Random random, int chars)
    {
        var sb = new StringBuilder();
        while (sb.Length < chars)
        {
            int kind = random.Next(6);
            int cp = kind switch
            {
                0 or 1 => random.Next(0x20, 0x7F),   // ASCII
                2 => random.Next(0x80, 0x800),       // 2 bytes
                3 => random.Next(0x800, 0xD800),     // 3 bytes, below the surrogates
                4 => random.Next(0xE000, 0x10000),   // 3 bytes, above them
                _ => random.Next(0x10000, 0x110000), // 4 bytes
            };
            sb.Append(char.ConvertFromUtf32(cp));
        }

        return sb.ToString();
    }

    [Fact]
    public void Random_valid_text_of_every_length_is_valid()
    {
        var random = new Random(6455);
        for (int n = 0; n < 600; n++)
        {
            byte[] data = Encoding.UTF8.GetBytes(RandomText(random, n));
            Assert.True(Utf8Lookup.IsValid(data), Convert.ToHexString(data));
        }
    }

    [Fact]
    public void Random_corruptions_are_judged_as_the_runtime_judges_them()
    {
        var random = new Random(7692);
        for (int n = 0; n < 20_000; n++)
        {
            byte[] data = Encoding.UTF8.GetBytes(RandomText(random, random.Next(20, 200)));
            switch (random.Next(4))
            {
                case 0: // any byte
                    data[random.Next(data.Length)] = (byte)random.Next(256);
                    break;
                case 1: // a continuation or lead byte
                    data[random.Next(data.Length)] = (byte)random.Next(0x80, 0x100);
                    break;
                case 2: // cut anywhere (often inside a sequence)
                    data = data[..random.Next(data.Length)];
                    break;
                default: // two changes
                    data[random.Next(data.Length)] = (byte)random.Next(0x80, 0x100);
                    data[random.Next(data.Length)] = (byte)random.Next(256);
                    break;
            }

            Agrees(data);
        }
    }

    public static TheoryData<string> Sequences => new()
    {
        "80", "BF", "C0AF", "C1BF", "E080AF", "E09FBF", "F08080AF", "F08FBFBF", "EDA080", "EDBFBF", "F4908080", "F5808080",
        "F8808080AF", "FE", "FF", "C0", "E0", "E0A0", "F0", "F09080", "C020", "E0A020", "F0908020",
        "C280", "DFBF", "E0A080", "ED9FBF", "EE8080", "EFBFBF", "F0908080", "F48FBFBF",
    };

    [Theory]
    [MemberData(nameof(Sequences))]
    public void A_sequence_at_every_position_of_the_blocks_is_judged_as_the_runtime_judges_it(string hex)
    {
        byte[] sequence = Hex(hex);
        byte[] greek = Encoding.UTF8.GetBytes("κόσμε κόσμε κόσμε κόσμε κόσμε κόσμε"); // non-ASCII around it, too
        foreach (byte[] context in new[] { Encoding.ASCII.GetBytes(new string('a', 100)), greek })
        {
            for (int at = 0; at <= 100; at++)
            {
                foreach (int total in new[] { at + sequence.Length, at + sequence.Length + 1, 128, 160 })
                {
                    if (total < at + sequence.Length)
                    {
                        continue;
                    }

                    byte[] data = new byte[total];
                    for (int i = 0; i < total; i++)
                    {
                        data[i] = context[i % context.Length];
                    }

                    // Keep the context itself valid where it is cut: ASCII filler around the sequence.
                    if (context == greek)
                    {
                        for (int i = Math.Max(0, at - 3); i < Math.Min(total, at + sequence.Length + 3); i++)
                        {
                            data[i] = (byte)'x';
                        }
                    }

                    sequence.CopyTo(data, at);
                    Agrees(data);
                }
            }
        }
    }
}
