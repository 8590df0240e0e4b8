using System.Buffers;

namespace Switchboard.Protocol.UnitTests;

public class FrameHeaderUnitTests
{
    [Theory]
    [InlineData(0L, false, 2)]
    [InlineData(125L, false, 2)]
    [InlineData(126L, false, 4)]
    [InlineData(65535L, false, 4)]
    [InlineData(65536L, true, 14)]
    [InlineData(1L << 40, true, 14)]
    [InlineData(long.MaxValue, false, 10)]
    public void Round_trips_every_length_encoding_at_every_split(long length, bool masked, int size)
    {
        byte[] buf = new byte[FrameHeader.MaxLength];
        int n = FrameHeader.Write(buf, true, 0b010, Opcode.Binary, length, masked, 0xA1B2C3D4);
        Assert.Equal(size, n);
        for (int k = 0; k < n; k++)
        {
            var partial = new SequenceReader<byte>(new ReadOnlySequence<byte>(buf, 0, k));
            Assert.Equal(FrameHeaderStatus.NeedMoreData, FrameHeader.TryRead(ref partial, out _));
            Assert.Equal(0, partial.Consumed);
            var segmented = new SequenceReader<byte>(TestSequence.Create(buf[..k], buf[k..n]));
            Assert.Equal(FrameHeaderStatus.Complete, FrameHeader.TryRead(ref segmented, out FrameHeader h2));
            Assert.Equal(length, h2.PayloadLength);
        }

        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(buf, 0, n));
        Assert.Equal(FrameHeaderStatus.Complete, FrameHeader.TryRead(ref reader, out FrameHeader h));
        Assert.Equal(n, reader.Consumed);
        Assert.True(h.Fin);
        Assert.Equal(0b010, h.Rsv);
        Assert.Equal(Opcode.Binary, h.Opcode);
        Assert.Equal(length, h.PayloadLength);
        Assert.Equal(masked, h.Masked);
        Assert.Equal(masked ? 0xA1B2C3D4 : 0u, h.MaskKey);
    }

    [Fact]
    public void Sixty_four_bit_length_with_msb_set_is_an_overflow_not_an_exception()
    {
        byte[] buf = Frames.Hex("82 7F 80 00 00 00 00 00 00 01");
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(buf));
        Assert.Equal(FrameHeaderStatus.LengthOverflow, FrameHeader.TryRead(ref reader, out _));
    }

    [Fact]
    public void Writer_uses_the_shortest_length_encoding()
    {
        byte[] buf = new byte[14];
        Assert.Equal(2, FrameHeader.Write(buf, true, 0, Opcode.Text, 125, false, 0));
        Assert.Equal(0x7D, buf[1]);
        Assert.Equal(4, FrameHeader.Write(buf, true, 0, Opcode.Text, 126, false, 0));
        Assert.Equal(Frames.Hex("81 7E 00 7E"), buf[..4]);
        Assert.Equal(10, FrameHeader.Write(buf, false, 0, Opcode.Continuation, 65536, false, 0));
        Assert.Equal(Frames.Hex("00 7F 00 00 00 00 00 01 00 00"), buf[..10]);
    }

    [Fact]
    public void Encoder_writes_rfc_5_7_examples()
    {
        Assert.Equal(Frames.Hex("81 05 48 65 6c 6c 6f"), Frames.Text("Hello", masked: false));
        Assert.Equal(Frames.Hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), Frames.Text("Hello", masked: true));
        Assert.Equal(Frames.Hex("89 05 48 65 6c 6c 6f"), Frames.Build(Opcode.Ping, "Hello"u8.ToArray(), masked: false));
    }
}
