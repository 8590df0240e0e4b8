using System.IO.Pipelines;
using Switchboard.Protocol;

namespace Switchboard.WebSockets.Tests.Engine;

/// <summary>A pipe writer that counts its flushes (each flush is one write to the socket behind a real transport).</summary>
internal sealed class FlushCountingWriter(PipeWriter inner) : PipeWriter
{
    private int _flushes;

    public int Flushes => Volatile.Read(ref _flushes);

    public override void Advance(int bytes) => inner.Advance(bytes);
    public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
    public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
    public override void CancelPendingFlush() => inner.CancelPendingFlush();
    public override void Complete(Exception? exception = null) => inner.Complete(exception);

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _flushes);
        return inner.FlushAsync(cancellationToken);
    }
}

public class SendBatchTests
{
    private static (WebSocketConnection Connection, PipePair Pipes, FlushCountingWriter Writer, Task Run) Open()
    {
        var pipes = new PipePair();
        var writer = new FlushCountingWriter(pipes.ToClient.Writer);
        var connection = new WebSocketConnection(new DuplexPipe(pipes.ToServer.Reader, writer), WebSocketRole.Server);
        Task run = connection.RunAsync(new CollectingHandler());
        return (connection, pipes, writer, run);
    }

    [Fact]
    public async Task Sends_in_a_batch_are_written_at_its_end_in_one_flush_per_connection()
    {
        var a = Open();
        var b = Open();
        await Task.Run(() =>
        {
            SendBatch.Begin();
            try
            {
                a.Connection.SendText("a1");
                b.Connection.SendText("b1");

                // Outside a batch the first send's writer would run on the thread pool now and flush "a1" alone.
                Assert.False(SpinWait.SpinUntil(() => a.Writer.Flushes + b.Writer.Flushes > 0, TimeSpan.FromMilliseconds(300)));
                for (int i = 2; i <= 5; i++)
                {
                    a.Connection.SendText("a" + i);
                    b.Connection.SendText("b" + i);
                }
            }
            finally
            {
                SendBatch.End();
            }

            // End ran both writers on this thread: the in-memory pipe's flush completes at once.
            Assert.Equal(1, a.Writer.Flushes);
            Assert.Equal(1, b.Writer.Flushes);
        });

        foreach (var (c, name) in new[] { (a, "a"), (b, "b") })
        {
            for (int i = 1; i <= 5; i++)
            {
                Assert.Equal(name + i, (await c.Pipes.ReadServerFrameAsync())!.Text);
            }

            c.Connection.Abort();
        }
    }

    [Fact]
    public async Task Batches_nest_and_writers_past_the_inline_share_go_to_the_thread_pool()
    {
        var connections = Enumerable.Range(0, SendBatch.InlineWriters + 36).Select(_ => Open()).ToArray();
        await Task.Run(() =>
        {
            SendBatch.Begin();
            SendBatch.Begin();
            foreach (var c in connections)
            {
                c.Connection.SendText("one");
            }

            SendBatch.End(); // inner: nothing written yet
            Assert.All(connections, c => Assert.Equal(0, c.Writer.Flushes));
            foreach (var c in connections)
            {
                c.Connection.SendText("two");
            }

            SendBatch.End();
            Assert.All(connections.Take(SendBatch.InlineWriters), c => Assert.Equal(1, c.Writer.Flushes)); // written by End itself
        });

        foreach (var c in connections)
        {
            Assert.Equal("one", (await c.Pipes.ReadServerFrameAsync())!.Text);
            Assert.Equal("two", (await c.Pipes.ReadServerFrameAsync())!.Text);
            Assert.Equal(1, c.Writer.Flushes);
            c.Connection.Abort();
        }
    }

    [Fact]
    public void End_without_Begin_is_refused() =>
        Assert.Throws<InvalidOperationException>(() => Task.Run(SendBatch.End).GetAwaiter().GetResult());
}
