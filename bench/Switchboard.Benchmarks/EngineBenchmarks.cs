using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Switchboard.Protocol;
using Switchboard.WebSockets;

namespace Switchboard.Benchmarks;

/// <summary>
/// The engine's receive and send paths over in-memory pipes (no sockets), with the memory diagnoser: allocations per
/// operation divided by the frames per operation is the per-frame cost.
/// </summary>
[MemoryDiagnoser]
public class EngineBenchmarks
{
    private const int Frames = 1000;
    private Pipe _toServer = null!;
    private Pipe _toClient = null!;
    private WebSocketConnection _server = null!;
    private CountingHandler _handler = null!;
    private byte[] _batch = [];
    private PreparedFrame _prepared = null!;
    private Pipe _toSlowClient = null!;
    private WebSocketConnection _slowServer = null!;
    private Task _slowReader = Task.CompletedTask;
    private CancellationTokenSource _stop = new();

    private sealed class CountingHandler : WebSocketHandler
    {
        public int Count;
        public int Target;
        public TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            if (++Count == Target)
            {
                Done.TrySetResult();
            }

            return ValueTask.CompletedTask;
        }
    }

    [Params(64)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _toServer = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        _toClient = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        _handler = new CountingHandler();
        _server = new WebSocketConnection(new DuplexPipe(_toServer.Reader, _toClient.Writer), WebSocketRole.Server,
            new WebSocketConnectionOptions { KeepAliveInterval = null, MaxOutboundQueueBytes = long.MaxValue });
        _ = _server.RunAsync(_handler);
        var w = new ArrayBufferWriter<byte>();
        byte[] payload = new byte[Size];
        for (int i = 0; i < Frames; i++)
        {
            FrameEncoder.WriteFrame(w, true, 0, Opcode.Binary, payload, masked: true, 0x01020304);
        }

        _batch = w.WrittenSpan.ToArray();
        _prepared = PreparedFrame.Create(MessageType.Binary, payload);

        // A peer that reads slowly: the pipe pauses the writer past 4 KiB, as a full socket buffer would, so the
        // writer's flush has to wait (asynchronously) several times per operation.
        _toSlowClient = new Pipe(new PipeOptions(pauseWriterThreshold: 4096, resumeWriterThreshold: 2048, useSynchronizationContext: false));
        _slowServer = new WebSocketConnection(new DuplexPipe(new Pipe().Reader, _toSlowClient.Writer), WebSocketRole.Server,
            new WebSocketConnectionOptions { KeepAliveInterval = null, MaxOutboundQueueBytes = long.MaxValue });
        _ = _slowServer.RunAsync(new CountingHandler());
        _slowReader = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                ReadResult r = await _toSlowClient.Reader.ReadAsync();
                _toSlowClient.Reader.AdvanceTo(r.Buffer.GetPosition(Math.Min(r.Buffer.Length, 512))); // a little at a time
                if (r.IsCompleted)
                {
                    return;
                }
            }
        });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop.Cancel();
        _server.Abort();
        _slowServer.Abort();
    }

    /// <summary>1,000 masked client frames in, each delivered to the handler (unmasked in place, no copy for whole frames).</summary>
    [Benchmark(OperationsPerInvoke = Frames)]
    public async Task Receive()
    {
        _handler.Count = 0;
        _handler.Target = Frames;
        _handler.Done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        byte[] copy = ArrayPool<byte>.Shared.Rent(_batch.Length);
        _batch.CopyTo(copy, 0);
        await _toServer.Writer.WriteAsync(copy.AsMemory(0, _batch.Length));
        await _handler.Done.Task;
        ArrayPool<byte>.Shared.Return(copy);
    }

    /// <summary>1,000 sends of one prepared frame, written out by the connection's writer.</summary>
    [Benchmark(OperationsPerInvoke = Frames)]
    public async Task SendPrepared()
    {
        for (int i = 0; i < Frames; i++)
        {
            _server.Send(_prepared);
        }

        await _server.WhenOutboundDrainedAsync();
        while (_toClient.Reader.TryRead(out ReadResult r))
        {
            _toClient.Reader.AdvanceTo(r.Buffer.End);
        }
    }

    /// <summary>1,000 sends of one prepared frame to a peer that reads slowly: the writer's flushes wait for room.</summary>
    [Benchmark(OperationsPerInvoke = Frames)]
    public async Task SendPreparedFlushWaits()
    {
        for (int i = 0; i < Frames; i++)
        {
            _slowServer.Send(_prepared);
        }

        await _slowServer.WhenOutboundDrainedAsync();
    }
}
