using System.Buffers;
using System.Globalization;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Switchboard.Hub.Messages;

namespace Switchboard.Benchmarks;

/// <summary>A message's time written into its JSON: the custom format string against the converter's digit writer.</summary>
public class TimeFormatBenchmarks
{
    private static readonly JsonSerializerOptions Options = new();
    private readonly UtcTimeConverter _converter = new();
    private readonly ArrayBufferWriter<byte> _buffer = new(64);
    private readonly DateTimeOffset _time = new(2026, 12, 1, 4, 5, 6, 789, TimeSpan.FromHours(1));
    private Utf8JsonWriter _writer = null!;

    [GlobalSetup]
    public void Setup() => _writer = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });

    [Benchmark(Baseline = true)]
    public void CustomFormatString()
    {
        Span<byte> utf8 = stackalloc byte[24];
        _time.UtcDateTime.TryFormat(utf8, out int written, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        _writer.WriteStringValue(utf8[..written]);
        Reset();
    }

    [Benchmark]
    public void Converter()
    {
        _converter.Write(_writer, _time, Options);
        Reset();
    }

    private void Reset()
    {
        _writer.Flush();
        _buffer.ResetWrittenCount();
        _writer.Reset(_buffer);
    }
}
