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
    public async Task Writers_past_the_inline_share_go_out_a_group_at_a_time_each_group_queueing_the_next()
    {
        // 64 inline, then groups of 64, 64 and 10. All three queued at once, anything queued after the fan-out (the
        // store's writer picking up the next publish) would wait for every one of them on a busy core.
        var connections = Enumerable.Range(0, (SendBatch.InlineWriters * 3) + 10).Select(_ => Open()).ToArray();
        var queued = new Queue<IThreadPoolWorkItem>();
        await Task.Run(() =>
        {
            SendBatch.t_queueForTests = queued.Enqueue;
            SendBatch.t_processorsForTests = 1;
            try
            {
                SendBatch.Begin();
                foreach (var c in connections)
                {
                    c.Connection.SendText("one");
                }

                SendBatch.End();
            }
            finally
            {
                SendBatch.t_queueForTests = null;
                SendBatch.t_processorsForTests = 0;
            }
        });

        int Written() => connections.Count(c => c.Writer.Flushes == 1);
        Assert.Equal(SendBatch.InlineWriters, Written());
        foreach (int expected in new[] { 128, 192, 202 })
        {
            Assert.Single(queued); // one lane: the next group is queued only when this one is done
            queued.Dequeue().Execute();
            Assert.Equal(expected, Written());
        }

        Assert.Empty(queued);
        foreach (var c in connections)
        {
            Assert.Equal("one", (await c.Pipes.ReadServerFrameAsync())!.Text);
            c.Connection.Abort();
        }
    }

    [Theory]
    [InlineData(0, 4, 0)]
    [InlineData(10, 4, 1)]
    [InlineData(138, 1, 1)] // a process on one core: one group in the queue at a time
    [InlineData(138, 2, 2)]
    [InlineData(138, 8, 3)] // never more lanes than groups
    [InlineData(138, 0, 1)]
    public void A_fan_out_keeps_at_most_one_group_per_processor_in_the_queue(int writers, int processors, int lanes) =>
        Assert.Equal(lanes, SendBatch.WriterGroups.Lanes(writers, processors));

    [Fact]
    public void End_without_Begin_is_refused() =>
        Assert.Throws<InvalidOperationException>(() => Task.Run(SendBatch.End).GetAwaiter().GetResult());
}
