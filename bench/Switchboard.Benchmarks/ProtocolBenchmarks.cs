using System.Buffers;
using System.Text;
using System.Text.Unicode;
using BenchmarkDotNet.Attributes;
using Switchboard.Protocol;

namespace Switchboard.Benchmarks;

/// <summary>Masking: our vectorized, offset-resumable XOR against the byte-at-a-time loop of the RFC's definition.</summary>
public class MaskingBenchmarks
{
    private byte[] _data = [];

    [Params(16, 1024, 65536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup() => _data = new byte[Size];

    [Benchmark(Baseline = true)]
    public void ByteAtATime()
    {
        ReadOnlySpan<byte> key = [0x37, 0xFA, 0x21, 0x3D];
        Span<byte> d = _data;
        for (int i = 0; i < d.Length; i++)
        {
            d[i] ^= key[i & 3];
        }
    }

    [Benchmark]
    public int Vectorized() => Masking.Apply(_data, 0x3d21fa37, 1);
}

/// <summary>UTF-8 validation of a text payload: ours (incremental) against the runtime's one-shot checks.</summary>
public class Utf8Benchmarks
{
    private static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);
    private byte[] _data = [];

    [Params(65536)]
    public int Size { get; set; }

    [Params("ascii", "mixed")]
    public string Text { get; set; } = "ascii";

    [GlobalSetup]
    public void Setup()
    {
        string unit = Text == "ascii" ? "The quick brown fox jumps over the lazy dog. " : "Grüße, κόσμε, 你好, emoji 😀 and ascii. ";
        var sb = new StringBuilder();
        while (Encoding.UTF8.GetByteCount(sb.ToString()) < Size)
        {
            sb.Append(unit);
        }

        _data = Encoding.UTF8.GetBytes(sb.ToString())[..Size];
        // Keep it valid: trim a split code point at the end.
        while (!Utf8.IsValid(_data))
        {
            _data = _data[..^1];
        }
    }

    [Benchmark(Baseline = true)]
    public int StrictDecoderCount() => Strict.GetCharCount(_data);

    [Benchmark]
    public bool RuntimeIsValid() => Utf8.IsValid(_data);

    [Benchmark]
    public bool IncrementalValidator()
    {
        var v = new Utf8Validator();
        return v.Append(_data) && v.IsComplete;
    }

    [Benchmark]
    public bool IncrementalValidatorIn1KiBPieces()
    {
        var v = new Utf8Validator();
        ReadOnlySpan<byte> d = _data;
        for (int i = 0; i < d.Length; i += 1024)
        {
            if (!v.Append(d.Slice(i, Math.Min(1024, d.Length - i))))
            {
                return false;
            }
        }

        return v.IsComplete;
    }
}

/// <summary>Frame parsing: decoding a buffer full of masked client frames (header, unmask, UTF-8 check for text).</summary>
public class FrameParseBenchmarks
{
    private byte[] _wire = [];
    private byte[] _work = [];
    private readonly FrameDecoder[] _decoders = new FrameDecoder[1];

    [Params(64, 1024, 65536)]
    public int FrameSize { get; set; }

    [Params("binary", "text")]
    public string Kind { get; set; } = "binary";

    /// <summary>Bytes of wire input per operation: frames of FrameSize, the last one sized to fill exactly.</summary>
    [Params(1 << 20)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var w = new ArrayBufferWriter<byte>();
        byte[] payload = Encoding.ASCII.GetBytes(new string('a', FrameSize));
        Opcode op = Kind == "text" ? Opcode.Text : Opcode.Binary;
        int frame = FrameHeader.GetEncodedLength(FrameSize, masked: true) + FrameSize;
        while (Size - w.WrittenCount >= 2 * frame)
        {
            FrameEncoder.WriteFrame(w, true, 0, op, payload, masked: true, 0x12345678);
        }

        int rest = Size - w.WrittenCount;
        int lastPayload = rest - FrameHeader.GetEncodedLength(rest - 6, masked: true);
        if (FrameHeader.GetEncodedLength(lastPayload, masked: true) + lastPayload != rest)
        {
            lastPayload = rest - FrameHeader.GetEncodedLength(lastPayload, masked: true);
        }

        FrameEncoder.WriteFrame(w, true, 0, op, Encoding.ASCII.GetBytes(new string('a', lastPayload)), masked: true, 0x12345678);
        _wire = w.WrittenSpan.ToArray();
        if (_wire.Length != Size)
        {
            throw new InvalidOperationException($"wire is {_wire.Length} bytes, expected {Size}");
        }
        _work = new byte[_wire.Length];
    }

    [Benchmark]
    public long Decode()
    {
        _wire.CopyTo(_work, 0); // the decoder unmasks in place
        var decoder = new FrameDecoder(new FrameDecoderOptions { Role = WebSocketRole.Server });
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(_work));
        long payload = 0;
        while (decoder.Decode(ref reader, out FrameEvent ev) == DecodeStatus.Event)
        {
            payload += ev.Payload.Length;
        }

        return payload;
    }
}

/// <summary>Frame writing: header + payload into a buffer writer, unmasked (server) and masked (client).</summary>
public class FrameWriteBenchmarks
{
    private readonly ArrayBufferWriter<byte> _writer = new(1 << 20);
    private byte[] _payload = [];

    [Params(125, 1024, 65536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup() => _payload = new byte[Size];

    [Benchmark(Baseline = true)]
    public int ServerUnmasked()
    {
        _writer.ResetWrittenCount();
        FrameEncoder.WriteFrame(_writer, true, 0, Opcode.Binary, _payload, masked: false, 0);
        return _writer.WrittenCount;
    }

    [Benchmark]
    public int ClientMasked()
    {
        _writer.ResetWrittenCount();
        FrameEncoder.WriteFrame(_writer, true, 0, Opcode.Binary, _payload, masked: true, 0x12345678);
        return _writer.WrittenCount;
    }
}
