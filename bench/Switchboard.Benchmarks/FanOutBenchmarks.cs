using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Switchboard.Protocol;
using Switchboard.WebSockets;

namespace Switchboard.Benchmarks;

/// <summary>
/// A room's fan-out of a batch of messages to its members, with and without <see cref="SendBatch"/>: each member's
/// writer started once per batch (on the fanning-out thread, the first 64) against once per member at its first
/// message (a thread-pool work item). The transports discard what they are given, so this measures the engine's
/// dispatch and writing, not a kernel's sends. One operation: 8 messages to 100 or 1,000 members (1,000: the writers
/// past End's own 64 go out in 15 thread-pool groups), until every queue drained.
/// </summary>
[MemoryDiagnoser]
public class FanOutBenchmarks
{
    [Params(100, 1000)]
    public int Members { get; set; }

    private const int Messages = 8;
    private WebSocketConnection[] _members = [];
    private PreparedFrame _message = null!;

    /// <summary>Takes every write and keeps nothing (a socket that always has room).</summary>
    private sealed class DiscardingWriter : PipeWriter
    {
        private readonly byte[] _buffer = new byte[64 * 1024];

        public override void Advance(int bytes)
        {
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => _buffer;

        public override Span<byte> GetSpan(int sizeHint = 0) => _buffer;

        public override void CancelPendingFlush()
        {
        }

        public override void Complete(Exception? exception = null)
        {
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(default(FlushResult));
    }

    private sealed class Idle : WebSocketHandler
    {
    }

    [GlobalSetup]
    public void Setup()
    {
        _message = PreparedFrame.Create(MessageType.Text, new byte[100]);
        _members = [.. Enumerable.Range(0, Members).Select(i =>
        {
            var connection = new WebSocketConnection(new DuplexPipe(new Pipe().Reader, new DiscardingWriter()), WebSocketRole.Server,
                new WebSocketConnectionOptions { KeepAliveInterval = null, MaxOutboundQueueBytes = long.MaxValue });
            _ = connection.RunAsync(new Idle());
            return connection;
        })];
    }

    [Benchmark(Baseline = true)]
    public Task PerMessage() => FanOutAsync(batched: false);

    [Benchmark]
    public Task Batched() => FanOutAsync(batched: true);

    private async Task FanOutAsync(bool batched)
    {
        if (batched)
        {
            SendBatch.Begin();
        }

        for (int m = 0; m < Messages; m++)
        {
            foreach (WebSocketConnection member in _members)
            {
                member.Send(_message);
            }
        }

        if (batched)
        {
            SendBatch.End();
        }

        foreach (WebSocketConnection member in _members)
        {
            await member.WhenOutboundDrainedAsync().ConfigureAwait(false);
        }
    }
}
