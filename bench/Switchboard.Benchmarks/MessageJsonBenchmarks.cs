using System.Buffers;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Switchboard.Hub.Messages;

namespace Switchboard.Benchmarks;

/// <summary>A message event written as JSON, as every published message is once before its fan-out.</summary>
public class MessageJsonBenchmarks
{
    private readonly ArrayBufferWriter<byte> _buffer = new(512);
    private readonly MessageEvent _message = new("lobby", 123_456, "3f2a9c1e-77d4-4b8e-9a51-0c6d2e8b4f10", "ann", "Ann", "Hello everyone, how is it going today?",
        new DateTimeOffset(2026, 12, 1, 4, 5, 6, 789, TimeSpan.Zero));
    private Utf8JsonWriter _writer = null!;

    [GlobalSetup]
    public void Setup() => _writer = new Utf8JsonWriter(_buffer);

    [Benchmark]
    public int MessageEvent()
    {
        JsonSerializer.Serialize(_writer, _message, HubJson.TypeInfo<MessageEvent>());
        _writer.Flush();
        int written = _buffer.WrittenCount;
        _buffer.ResetWrittenCount();
        _writer.Reset(_buffer);
        return written;
    }
}
