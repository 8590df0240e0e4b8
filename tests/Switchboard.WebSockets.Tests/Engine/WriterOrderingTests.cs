using System.IO.Pipelines;

namespace Switchboard.WebSockets.Tests.Engine;

/// <summary>A pipe writer whose flushes complete asynchronously (like a socket under load), to widen races.</summary>
internal sealed class SlowFlushWriter(PipeWriter inner) : PipeWriter
{
    public override void Advance(int bytes) => inner.Advance(bytes);
    public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
    public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
    public override void CancelPendingFlush() => inner.CancelPendingFlush();
    public override void Complete(Exception? exception = null) => inner.Complete(exception);

    public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        await Task.Delay(30, cancellationToken);
        return await inner.FlushAsync(cancellationToken);
    }
}

public class WriterOrderingTests
{
    /// <summary>Echoes, then lingers so that the writer is mid-flush when the next frame is processed.</summary>
    private sealed class LingeringEcho : WebSocketHandler
    {
        public override async ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            connection.Send(message.Type, message.Data);
            await Task.Delay(5);
        }
    }

    // Regression: a close frame queued while the writer was flushing the echo before it must still be
    // written before the output is completed (it used to be dropped when the flush completed asynchronously).
    [Fact]
    public async Task Close_frame_queued_during_a_slow_flush_is_written_after_the_echo()
    {
        for (int i = 0; i < 10; i++)
        {
            var pipes = new PipePair();
            var transport = new DuplexPipe(pipes.ToServer.Reader, new SlowFlushWriter(pipes.ToClient.Writer));
            var server = new WebSocketConnection(transport, Protocol.WebSocketRole.Server);
            Task run = server.RunAsync(new LingeringEcho());
            await pipes.WriteToServerAsync([.. RawWebSocket.TextFrame("first"), .. RawWebSocket.Frame(13, [1, 2]), .. RawWebSocket.TextFrame("never")]);
            await run.WaitAsync(TimeSpan.FromSeconds(10));
            RawFrame? echo = await pipes.ReadServerFrameAsync();
            RawFrame? close = await pipes.ReadServerFrameAsync();
            Assert.True(echo?.Text == "first" && close?.Opcode == 8 && close.CloseCode == 1002, $"iteration {i}: {echo?.Opcode} then {close?.Opcode}");
        }
    }
}
