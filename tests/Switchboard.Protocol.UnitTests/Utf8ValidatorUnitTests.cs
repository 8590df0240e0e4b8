using System.Text.Unicode;

namespace Switchboard.Protocol.UnitTests;

public class Utf8ValidatorUnitTests
{
    // The classic invalid sequences (Markus Kuhn's UTF-8 decoder stress test, as used by the Autobahn
    // suite's section 6): each must be refused whether fed whole or split at any point.
    public static TheoryData<string> InvalidSequences => new()
    {
        "80", "BF", "80BF", "80BF80", "C0AF", "E080AF", "F08080AF", "F8808080AF", "FC80808080AF", // stray continuation, overlong '/'
        "C1BF", "E09FBF", "F08FBFBF",                   // overlong maximums
        "EDA080", "EDADBF", "EDAE80", "EDAFBF", "EDB080", "EDBE80", "EDBFBF", // UTF-16 surrogates
        "EDA080EDB080", "EDAFBFEDBFBF",                 // surrogate pairs
        "F4908080", "F7BFBFBF", "F5", "FE", "FF", "FEFEFFFF", // beyond U+10FFFF, impossible bytes
        "C0", "E0", "E080", "F0", "F08080",              // incomplete at the end
        "C020", "E0A020", "F09020", "CE BA E1 BD B9 CF 83 CE BC CE B5 ED A0 80 65 64 69 74 65 64",
        "C0C1", "E0A0C0",
    };

    public static TheoryData<string> ValidSequences => new()
    {
        "", "00", "7F", "C280", "DFBF", "E0A080", "EFBFBF", "F0908080", "F48FBFBF", "ED9FBF",
        "EE8080", "EFBFBE", "CEBAE1BDB9CF83CEBCCEB5", "48656C6C6F2D C2B5 40 C39F C3B6 C3A4 C3BC C3A0 C3A1 2D55 5446 2D38 2121",
    };

    [Theory]
    [MemberData(nameof(InvalidSequences))]
    public void Invalid_sequences_are_refused_at_every_split(string hex)
    {
        byte[] bytes = Convert.FromHexString(hex.Replace(" ", ""));
        for (int k = 0; k <= bytes.Length; k++)
        {
            var v = new Utf8Validator();
            bool ok = v.Append(bytes.AsSpan(0, k)) && v.Append(bytes.AsSpan(k)) && v.IsComplete;
            Assert.False(ok, $"accepted {hex} split at {k}");
        }
    }

    [Theory]
    [MemberData(nameof(ValidSequences))]
    public void Valid_sequences_are_accepted_at_every_split(string hex)
    {
        byte[] bytes = Convert.FromHexString(hex.Replace(" ", ""));
        for (int k = 0; k <= bytes.Length; k++)
        {
            var v = new Utf8Validator();
            Assert.True(v.Append(bytes.AsSpan(0, k)), $"refused prefix of {hex} at {k}");
            Assert.True(v.Append(bytes.AsSpan(k)), $"refused {hex} split at {k}");
            Assert.True(v.IsComplete);
        }
    }

    [Theory]
    [InlineData("EDA0", 2)]     // surrogate: fails at the second byte
    [InlineData("F490", 2)]     // > U+10FFFF: fails at the second byte
    [InlineData("E080", 2)]     // overlong: fails at the second byte
    [InlineData("F5", 1)]       // impossible lead byte: fails at once
    [InlineData("C0", 1)]       // always-overlong lead byte
    [InlineData("61 62 C2 41", 4)]
    public void Invalid_input_fails_as_early_as_the_bytes_allow(string hex, int failsAt)
    {
        byte[] bytes = Convert.FromHexString(hex.Replace(" ", ""));
        var v = new Utf8Validator();
        for (int i = 0; i < bytes.Length; i++)
        {
            bool ok = v.Append(bytes.AsSpan(i, 1));
            Assert.Equal(i + 1 < failsAt, ok);
            if (!ok)
            {
                return;
            }
        }

        Assert.Fail("never failed");
    }

    [Fact]
    public void Agrees_with_the_runtime_validator_on_random_input_split_randomly()
    {
        var rng = new Random(6455);
        byte[] alphabet = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF];
        for (int round = 0; round < 20000; round++)
        {
            byte[] data = new byte[rng.Next(0, 12)];
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = alphabet[rng.Next(alphabet.Length)];
            }

            int k = rng.Next(0, data.Length + 1);
            var v = new Utf8Validator();
            bool ours = v.Append(data.AsSpan(0, k)) && v.Append(data.AsSpan(k)) && v.IsComplete;
            Assert.True(Utf8.IsValid(data) == ours, Convert.ToHexString(data) + " at " + k);
        }
    }

    [Fact]
    public void Long_valid_text_goes_through_the_bulk_path()
    {
        byte[] text = System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("ascii and κόσμε and 𝄞 ", 500)));
        var v = new Utf8Validator();
        for (int i = 0; i < text.Length; i += 37)
        {
            Assert.True(v.Append(text.AsSpan(i, Math.Min(37, text.Length - i))));
        }

        Assert.True(v.IsComplete);
    }
}
