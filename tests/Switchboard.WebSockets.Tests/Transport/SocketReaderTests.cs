using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Switchboard.WebSockets.AspNetCore.Sockets;

namespace Switchboard.WebSockets.Tests.Transport;

/// <summary>The transport's reader and writer against a real loopback peer: the <see cref="PipeReader"/> contract.</summary>
public sealed class SocketReaderTests : IAsyncLifetime
{
    private SocketListener _listener = null!;
    private Socket _peer = null!;
    private SocketConnection _connection = null!;

    private PipeReader Input => ((IDuplexPipe)_connection).Input;

    private PipeWriter Output => ((IDuplexPipe)_connection).Output;

    public async Task InitializeAsync()
    {
        _listener = SocketListener.Bind(new IPEndPoint(IPAddress.Loopback, 0), 16, maxReadBuffer: 64 * 1024);
        _peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await _peer.ConnectAsync(_listener.EndPoint);
        _connection = (SocketConnection)(await _listener.AcceptAsync())!;
    }

    public async Task DisposeAsync()
    {
        await _connection.DisposeAsync();
        _peer.Dispose();
        await _listener.DisposeAsync();
    }

    private async Task<ReadResult> ReadAtLeastAsync(long bytes)
    {
        while (true)
        {
            ReadResult result = await Input.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            if (result.Buffer.Length >= bytes || result.IsCompleted)
            {
                return result;
            }

            Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    [Fact]
    public async Task Unconsumed_data_accumulates_across_buffers_and_a_read_waits_for_new_data_once_all_is_examined()
    {
        byte[] sent = new byte[20_000];
        Random.Shared.NextBytes(sent);
        await _peer.SendAsync(sent);
        ReadResult all = await ReadAtLeastAsync(sent.Length);
        Assert.Equal(sent, all.Buffer.ToArray()); // kept in several 4 KiB buffers, in order
        Assert.True(SocketTransportMetrics.ReceiveBufferBytes >= _connection.Reader.HeldBufferBytes); // on the gauge
        Assert.False(all.Buffer.IsSingleSegment);

        // Everything examined, nothing consumed: the next read waits for new bytes, then returns old and new.
        Input.AdvanceTo(all.Buffer.Start, all.Buffer.End);
        ValueTask<ReadResult> next = Input.ReadAsync();
        Assert.False(next.IsCompleted);
        await _peer.SendAsync(new byte[] { 42 });
        ReadResult more = await next.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(sent.Length + 1, more.Buffer.Length);

        // Consumed up to a point inside the data: the rest is returned again at once (not all of it was examined).
        Input.AdvanceTo(more.Buffer.GetPosition(15_000), more.Buffer.GetPosition(15_000));
        ReadResult rest = await Input.ReadAsync();
        Assert.Equal(5_001, rest.Buffer.Length);
        Assert.Equal(sent[15_000..], rest.Buffer.Slice(0, 5_000).ToArray());
        Input.AdvanceTo(rest.Buffer.End);
        Assert.Equal(0, _connection.Reader.HeldBufferBytes);
    }

    [Fact]
    public async Task CancelPendingRead_completes_a_waiting_read_as_canceled_and_data_still_arrives_after()
    {
        ValueTask<ReadResult> waiting = Input.ReadAsync();
        Assert.False(waiting.IsCompleted);
        Input.CancelPendingRead();
        ReadResult canceled = await waiting;
        Assert.True(canceled.IsCanceled);
        Input.AdvanceTo(canceled.Buffer.End);

        await _peer.SendAsync(new byte[] { 1, 2, 3 });
        ReadResult data = await ReadAtLeastAsync(3);
        Assert.False(data.IsCanceled);
        Assert.Equal(new byte[] { 1, 2, 3 }, data.Buffer.ToArray());
    }

    [Fact]
    public async Task The_peers_end_of_stream_completes_reading_after_its_data_and_fires_the_closed_token()
    {
        CancellationToken closed = _connection.ConnectionClosed;
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        closed.Register(() => fired.TrySetResult());
        await _peer.SendAsync(new byte[] { 7, 8 });
        _peer.Shutdown(SocketShutdown.Send);
        ReadResult last = await ReadAtLeastAsync(long.MaxValue);
        Assert.True(last.IsCompleted);
        Assert.Equal(new byte[] { 7, 8 }, last.Buffer.ToArray());
        await fired.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Aborting_fails_a_waiting_read_and_closes_the_socket()
    {
        ValueTask<ReadResult> waiting = Input.ReadAsync();
        Assert.False(waiting.IsCompleted);
        _connection.Abort(new ConnectionAbortedException("test abort"));
        ConnectionAbortedException e = await Assert.ThrowsAsync<ConnectionAbortedException>(async () => await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("test abort", e.Message);
        Assert.Equal(0, await _peer.ReceiveAsync(new byte[1]).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task More_unconsumed_bytes_than_the_bound_abort_the_connection()
    {
        byte[] flood = new byte[200_000]; // the listener's bound is 64 KiB
        long abortsBefore = SocketTransportMetrics.BoundAborts;
        Task sending = _peer.SendAsync(flood);
        await Assert.ThrowsAsync<ConnectionAbortedException>(async () =>
        {
            while (true)
            {
                ReadResult result = await Input.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
                Input.AdvanceTo(result.Buffer.Start, result.Buffer.End); // never consumes
            }
        });
        await sending.WaitAsync(TimeSpan.FromSeconds(10)); // the kernel took it all
        Assert.True(SocketTransportMetrics.BoundAborts > abortsBefore); // counted (switchboard_transport_read_bound_aborts_total)

        // The connection was shut down: the peer sees its end (a reset, as unread data was discarded).
        byte[] one = new byte[1];
        try
        {
            Assert.Equal(0, await _peer.ReceiveAsync(one).WaitAsync(TimeSpan.FromSeconds(10)));
        }
        catch (SocketException e)
        {
            Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
        }
    }

    [Fact]
    public async Task Written_bytes_reach_the_peer_on_flush_and_completing_the_output_closes_the_connection()
    {
        byte[] payload = new byte[300_000];
        Random.Shared.NextBytes(payload);
        for (int offset = 0; offset < payload.Length; offset += 10_000)
        {
            payload.AsSpan(offset, 10_000).CopyTo(Output.GetSpan(10_000));
            Output.Advance(10_000);
        }

        Assert.Equal(payload.Length, Output.UnflushedBytes);
        Task<FlushResult> flushing = Output.FlushAsync().AsTask(); // more than the socket buffer: completes as the peer reads

        var received = new MemoryStream();
        byte[] chunk = new byte[65536];
        while (received.Length < payload.Length)
        {
            int n = await _peer.ReceiveAsync(chunk);
            Assert.NotEqual(0, n);
            received.Write(chunk, 0, n);
        }

        FlushResult flushed = await flushing.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(flushed.IsCompleted);
        Assert.Equal(payload, received.ToArray());

        await Output.CompleteAsync();
        Assert.Equal(0, await _peer.ReceiveAsync(chunk).WaitAsync(TimeSpan.FromSeconds(10))); // end of stream
    }
}
