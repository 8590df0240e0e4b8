using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Switchboard.Protocol;

namespace Switchboard.WebSockets.Tests.Engine;

/// <summary>Two connected in-memory transports: what one writes, the other reads.</summary>
internal sealed class PipePair
{
    public Pipe ToServer { get; } = new();
    public Pipe ToClient { get; } = new();
    public DuplexPipe Server => new(ToServer.Reader, ToClient.Writer);
    public DuplexPipe Client => new(ToClient.Reader, ToServer.Writer);

    /// <summary>Reads the next frame the server wrote (unmasked), as the raw test peer.</summary>
    public async Task<RawFrame?> ReadServerFrameAsync()
    {
        while (true)
        {
            ReadResult r = await ToClient.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            byte[] buf = r.Buffer.ToArray();
            if (buf.Length >= 2)
            {
                int len = buf[1] & 0x7F;
                int head = len == 126 ? 4 : len == 127 ? 10 : 2;
                long plen = len == 126 ? (buf[2] << 8) | buf[3] : len;
                if (len == 127 && buf.Length >= 10)
                {
                    plen = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(buf.AsSpan(2));
                }

                if (buf.Length >= head + plen)
                {
                    ToClient.Reader.AdvanceTo(r.Buffer.GetPosition(head + plen));
                    return new RawFrame((buf[0] & 0x80) != 0, (buf[0] >> 4) & 7, buf[0] & 0xF, buf[head..(head + (int)plen)]);
                }
            }

            if (r.IsCompleted)
            {
                ToClient.Reader.AdvanceTo(r.Buffer.End);
                return null;
            }

            ToClient.Reader.AdvanceTo(r.Buffer.Start, r.Buffer.End);
        }
    }

    public async Task WriteToServerAsync(byte[] bytes) => await ToServer.Writer.WriteAsync(bytes);
}

internal sealed class CollectingHandler : WebSocketHandler
{
    public List<string> Messages { get; } = [];
    public TaskCompletionSource<WebSocketError> Error { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
    {
        lock (Messages)
        {
            Messages.Add(message.GetText());
        }

        return ValueTask.CompletedTask;
    }

    public override ValueTask OnErrorAsync(WebSocketConnection connection, WebSocketError error)
    {
        Error.TrySetResult(error);
        return ValueTask.CompletedTask;
    }
}

public class KeepAliveUnitTests
{
    private static (WebSocketConnection Server, PipePair Pipes, FakeTimeProvider Time, WebSocketHeartbeat Heartbeat) Create(TimeSpan? closeTimeout = null)
    {
        var time = new FakeTimeProvider();
        var heartbeat = new WebSocketHeartbeat(time, TimeSpan.FromSeconds(1));
        var pipes = new PipePair();
        var server = new WebSocketConnection(pipes.Server, WebSocketRole.Server, new WebSocketConnectionOptions
        {
            KeepAliveInterval = TimeSpan.FromSeconds(30),
            KeepAliveTimeout = TimeSpan.FromSeconds(20),
            CloseTimeout = closeTimeout ?? TimeSpan.FromSeconds(5),
            Heartbeat = heartbeat,
        }, abortTransport: () => pipes.ToServer.Writer.Complete());
        return (server, pipes, time, heartbeat);
    }

    [Fact]
    public async Task A_connection_idle_for_a_whole_tick_gives_its_outbound_queue_back_and_sends_again_after()
    {
        var (server, pipes, time, heartbeat) = Create();
        using var _ = heartbeat;
        Task<WebSocketCloseStatus> run = server.RunAsync(new CollectingHandler());
        Assert.False(server.HoldsOutboundQueue); // nothing sent yet
        server.SendText("welcome");
        Assert.Equal("welcome", (await pipes.ReadServerFrameAsync())!.Text);
        await server.WhenOutboundDrainedAsync();
        Assert.True(server.HoldsOutboundQueue);

        time.Advance(TimeSpan.FromSeconds(1)); // this tick saw a send: the ring stays (a busy connection keeps it)
        Assert.True(server.HoldsOutboundQueue);
        time.Advance(TimeSpan.FromSeconds(1)); // a whole tick without one: given back
        Assert.False(server.HoldsOutboundQueue);

        for (int i = 0; i < 10; i++)
        {
            server.SendText("again " + i); // more than the first ring's four slots: it grows, in order
        }

        for (int i = 0; i < 10; i++)
        {
            Assert.Equal("again " + i, (await pipes.ReadServerFrameAsync())!.Text);
        }

        server.Abort("done");
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Sends_from_several_threads_at_once_all_arrive_each_threads_in_its_order()
    {
        var (server, pipes, _, heartbeat) = Create();
        using var _h = heartbeat;
        Task<WebSocketCloseStatus> run = server.RunAsync(new CollectingHandler());
        const int Threads = 4, Each = 2000;
        var reading = Task.Run(async () =>
        {
            var next = new int[Threads];
            for (int n = 0; n < Threads * Each; n++)
            {
                string[] parts = (await pipes.ReadServerFrameAsync())!.Text.Split(':');
                int thread = int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), i = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(next[thread]++, i); // nothing lost, nothing reordered within a thread
            }
        });
        await Task.WhenAll(Enumerable.Range(0, Threads).Select(t => Task.Run(() =>
        {
            for (int i = 0; i < Each; i++)
            {
                Assert.Equal(SendResult.Enqueued, server.SendText(FormattableString.Invariant($"{t}:{i}")));
            }
        })));
        await reading.WaitAsync(TimeSpan.FromSeconds(60));
        server.Abort("done");
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Idle_connection_is_pinged_and_aborted_when_no_pong_comes()
    {
        var (server, pipes, time, heartbeat) = Create();
        Task<WebSocketCloseStatus> run = server.RunAsync(new CollectingHandler());
        time.Advance(TimeSpan.FromSeconds(29)); // the heartbeat's timer fires on the fake clock, once a second
        time.Advance(TimeSpan.FromSeconds(1));
        RawFrame? ping = await pipes.ReadServerFrameAsync();
        Assert.Equal(9, ping!.Opcode);
        time.Advance(TimeSpan.FromSeconds(19));
        Assert.False(run.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        WebSocketCloseStatus status = await run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1006, status.Code);
        Assert.False(status.WasClean);
        Assert.Contains("Keepalive", status.Reason);
    }

    [Fact]
    public async Task A_pong_keeps_the_connection_alive()
    {
        var (server, pipes, time, heartbeat) = Create();
        Task<WebSocketCloseStatus> run = server.RunAsync(new CollectingHandler());
        for (int round = 0; round < 3; round++)
        {
            time.Advance(TimeSpan.FromSeconds(30));
            Assert.Equal(9, (await pipes.ReadServerFrameAsync())!.Opcode);
            await pipes.WriteToServerAsync(RawWebSocket.Frame(10, []));
            // Frames are handled in order: the answer to this ping proves the pong before it was processed.
            await pipes.WriteToServerAsync(RawWebSocket.Frame(9, [(byte)round]));
            Assert.Equal(10, (await pipes.ReadServerFrameAsync())!.Opcode);
            time.Advance(TimeSpan.FromSeconds(20));
            Assert.False(run.IsCompleted);
        }

        server.Abort();
        await run;
    }

    [Fact]
    public async Task Close_without_a_reply_is_aborted_after_the_close_timeout()
    {
        var (server, pipes, time, heartbeat) = Create(TimeSpan.FromSeconds(5));
        Task<WebSocketCloseStatus> run = server.RunAsync(new CollectingHandler());
        server.Close(1001, "going away");
        RawFrame? close = await pipes.ReadServerFrameAsync();
        Assert.Equal((8, 1001), (close!.Opcode, close.CloseCode));
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(run.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        WebSocketCloseStatus status = await run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1006, status.Code);
        Assert.False(status.WasClean);
    }
}

public class SendingUnitTests
{
    private static (WebSocketConnection Server, PipePair Pipes) Create(WebSocketConnectionOptions options)
    {
        var pipes = new PipePair();
        return (new WebSocketConnection(pipes.Server, WebSocketRole.Server, options), pipes);
    }

    [Fact]
    public async Task Sends_from_many_threads_arrive_complete_and_in_per_thread_order()
    {
        var pipes = new PipePair();
        var server = new WebSocketConnection(pipes.Server, WebSocketRole.Server);
        var client = new WebSocketConnection(pipes.Client, WebSocketRole.Client);
        var handler = new CollectingHandler();
        _ = server.RunAsync(new CollectingHandler());
        _ = client.RunAsync(handler);
        const int threads = 8, each = 2000;
        await Task.WhenAll(Enumerable.Range(0, threads).Select(t => Task.Run(() =>
        {
            for (int i = 0; i < each; i++)
            {
                Assert.Equal(SendResult.Enqueued, server.SendText($"{t}:{i}"));
            }
        })));
        server.Close();
        await client.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(threads * each, handler.Messages.Count);
        for (int t = 0; t < threads; t++)
        {
            int[] seq = [.. handler.Messages.Where(m => m.StartsWith($"{t}:", StringComparison.Ordinal)).Select(m => int.Parse(m.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture))];
            Assert.Equal(Enumerable.Range(0, each), seq);
        }
    }

    [Fact]
    public async Task Prepared_frame_is_encoded_once_and_sent_to_many()
    {
        PreparedFrame frame = PreparedFrame.CreateText("to everyone");
        Assert.Equal(Convert.FromHexString("810B") .Concat("to everyone"u8.ToArray()), frame.ServerFrame.ToArray());
        var peers = Enumerable.Range(0, 50).Select(_ => new PipePair()).ToList();
        var connections = peers.Select(p => new WebSocketConnection(p.Server, WebSocketRole.Server)).ToList();
        foreach (var c in connections)
        {
            _ = c.RunAsync(new CollectingHandler());
            Assert.Equal(SendResult.Enqueued, c.Send(frame));
        }

        foreach (var p in peers)
        {
            Assert.Equal("to everyone", (await p.ReadServerFrameAsync())!.Text);
        }

        foreach (var c in connections)
        {
            c.Abort();
        }
    }

    [Fact]
    public async Task Full_queue_with_close_policy_drops_the_backlog_and_closes_with_1008()
    {
        var (server, pipes) = Create(new() { MaxOutboundQueueBytes = 1024 * 1024, OverflowPolicy = OutboundOverflowPolicy.Close });
        _ = server.RunAsync(new CollectingHandler());
        byte[] chunk = new byte[64 * 1024];
        SendResult last = SendResult.Enqueued;
        int sent = 0;
        while (last == SendResult.Enqueued && sent < 1000)
        {
            last = server.Send(MessageType.Binary, chunk); // the peer reads nothing: the pipe fills, then the queue
            sent++;
        }

        Assert.Equal(SendResult.Closed, last);
        Assert.True(sent < 1000);
        Assert.Equal(WebSocketState.CloseSent, server.State);
        Assert.True(server.QueuedBytes <= 1024 * 1024 + 128 * 1024, $"queued {server.QueuedBytes}");
        Assert.Equal(SendResult.Closed, server.SendText("after"));

        // When the peer finally reads, the close frame (1008) arrives after whatever was already written.
        RawFrame? f;
        do
        {
            f = await pipes.ReadServerFrameAsync();
        }
        while (f is not null && f.Opcode != 8);

        Assert.Equal(1008, f!.CloseCode);
        server.Abort();
    }

    [Fact]
    public async Task TrySend_over_the_soft_limit_reports_queue_full_without_closing()
    {
        var (server, pipes) = Create(new() { MaxOutboundQueueBytes = 16 * 1024 * 1024, OverflowPolicy = OutboundOverflowPolicy.Close });
        _ = server.RunAsync(new CollectingHandler());
        PreparedFrame frame = PreparedFrame.Create(MessageType.Binary, new byte[64 * 1024]);
        SendResult last = SendResult.Enqueued;
        int sent = 0;
        for (; sent < 1000 && last == SendResult.Enqueued; sent++)
        {
            last = server.TrySend(frame, softLimitBytes: 512 * 1024); // the peer reads nothing
        }

        Assert.Equal(SendResult.QueueFull, last);
        Assert.Equal(WebSocketState.Open, server.State); // the soft limit never applies the overflow policy
        Assert.True(server.QueuedBytes <= 512 * 1024 + 70 * 1024);
        Assert.Equal(SendResult.Enqueued, server.SendText("important")); // plain sends still go (up to the hard limit)
        server.Abort();
        await Task.CompletedTask;
        _ = pipes;
    }

    [Fact]
    public async Task Full_queue_with_reject_policy_reports_backpressure_and_stays_open()
    {
        var (server, pipes) = Create(new() { MaxOutboundQueueBytes = 1024 * 1024, OverflowPolicy = OutboundOverflowPolicy.Reject });
        _ = server.RunAsync(new CollectingHandler());
        byte[] chunk = new byte[64 * 1024];
        SendResult last = SendResult.Enqueued;
        for (int i = 0; i < 1000 && last == SendResult.Enqueued; i++)
        {
            last = server.Send(MessageType.Binary, chunk);
        }

        Assert.Equal(SendResult.QueueFull, last);
        Assert.Equal(WebSocketState.Open, server.State);

        // Drain: the peer reads everything, then sending works again.
        while (server.QueuedBytes > 0)
        {
            Assert.Equal(2, (await pipes.ReadServerFrameAsync())!.Opcode);
        }

        Assert.Equal(SendResult.Enqueued, server.SendText("again"));
        RawFrame? f;
        do
        {
            f = await pipes.ReadServerFrameAsync();
        }
        while (f!.Opcode == 2);

        Assert.Equal("again", f.Text);
        server.Abort();
    }
}

public class ReceivingUnitTests
{
    private sealed class StreamingHandler : WebSocketHandler
    {
        public List<(int Length, bool End)> Chunks { get; } = [];
        public long Total;

        public override bool StreamsMessages => true;

        public override ValueTask OnMessageChunkAsync(WebSocketConnection connection, MessageType type, ReadOnlySequence<byte> chunk, bool endOfMessage)
        {
            Chunks.Add(((int)chunk.Length, endOfMessage));
            Total += chunk.Length;
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task Streaming_receive_delivers_a_large_message_in_pieces_as_it_arrives()
    {
        var pipes = new PipePair();
        var handler = new StreamingHandler();
        var server = new WebSocketConnection(pipes.Server, WebSocketRole.Server, new() { MaxMessageSize = 64L * 1024 * 1024 });
        Task run = server.RunAsync(handler);
        byte[] frame = RawWebSocket.Frame(2, new byte[8 * 1024 * 1024]);
        for (int i = 0; i < frame.Length; i += 100_000)
        {
            await pipes.WriteToServerAsync(frame[i..Math.Min(frame.Length, i + 100_000)]);
        }

        await pipes.WriteToServerAsync(RawWebSocket.CloseFrame(1000));
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(8 * 1024 * 1024, handler.Total);
        Assert.True(handler.Chunks.Count > 1);
        Assert.True(handler.Chunks[^1].End);
        Assert.All(handler.Chunks.SkipLast(1), c => Assert.False(c.End));
    }

    [Fact]
    public async Task Handler_exception_fails_the_connection_with_1011()
    {
        var pipes = new PipePair();
        var server = new WebSocketConnection(pipes.Server, WebSocketRole.Server);
        Task<WebSocketCloseStatus> run = server.RunAsync(new ThrowingHandler());
        await pipes.WriteToServerAsync(RawWebSocket.TextFrame("boom"));
        RawFrame? close = await pipes.ReadServerFrameAsync();
        Assert.Equal((8, 1011), (close!.Opcode, close.CloseCode));
        Assert.Equal("Internal error", Encoding.UTF8.GetString(close.Payload[2..])); // no internals leak
        pipes.ToServer.Writer.Complete();
        Assert.False((await run.WaitAsync(TimeSpan.FromSeconds(10))).WasClean);
    }

    private sealed class ThrowingHandler : WebSocketHandler
    {
        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message) =>
            throw new InvalidOperationException("secret internal detail");
    }
}

/// <summary>A close scheduled at a wall-clock time happens on the heartbeat's tick, on the heartbeat's clock.</summary>
public class ScheduledCloseUnitTests
{
    [Fact]
    public async Task CloseAt_closes_on_the_first_tick_past_the_deadline_and_a_later_call_moves_it()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        using var heartbeat = new WebSocketHeartbeat(time, TimeSpan.FromSeconds(1));
        var pipes = new PipePair();
        var server = new WebSocketConnection(pipes.Server, WebSocketRole.Server, new WebSocketConnectionOptions { Heartbeat = heartbeat, KeepAliveInterval = null });
        Task<WebSocketCloseStatus> run = server.RunAsync(new CollectingHandler());
        server.CloseAt(time.GetUtcNow().AddMinutes(10), 4001, "Token expired");
        server.CloseAt(time.GetUtcNow().AddMinutes(20), 4001, "Token expired"); // refreshed: the deadline moves
        time.Advance(TimeSpan.FromMinutes(19));
        Assert.Equal(WebSocketState.Open, server.State);
        time.Advance(TimeSpan.FromMinutes(1));
        RawFrame? close = await pipes.ReadServerFrameAsync();
        Assert.Equal((8, 4001), (close!.Opcode, close.CloseCode));
        await pipes.WriteToServerAsync(RawWebSocket.Frame(8, [0x0f, 0xa1], masked: true));
        Assert.Equal(4001, (await run.WaitAsync(TimeSpan.FromSeconds(10))).Code);
    }
}
