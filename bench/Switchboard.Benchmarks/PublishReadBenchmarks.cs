using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Switchboard.Hub;
using Switchboard.Hub.Messages;

namespace Switchboard.Benchmarks;

/// <summary>A publish command read from its JSON, as every message published is: the envelope, then the command.</summary>
public class PublishReadBenchmarks
{
    private readonly ReadOnlySequence<byte> _utf8 = new(Encoding.UTF8.GetBytes(
        """{"type":"publish","room":"lobby","text":"Hello everyone, how is it going today?","id":"3f2a9c1e-77d4-4b8e-9a51-0c6d2e8b4f10","ref":"p42"}"""));

    [Benchmark(Baseline = true)]
    public PublishCommand? Serializer()
    {
        CommandEnvelope.TryParse(_utf8, out _, out _, out _, out _);
        return HubJson.Read<PublishCommand>(_utf8);
    }

    [Benchmark]
    public PublishCommand? OwnReader()
    {
        CommandEnvelope.TryParse(_utf8, out CommandEnvelope envelope, out _, out _, out _);
        envelope.TryRead(out PublishCommand? command, out _, out _);
        return command;
    }
}
