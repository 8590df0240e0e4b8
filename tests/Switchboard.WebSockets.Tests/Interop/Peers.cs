using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using Switchboard.Protocol;

namespace Switchboard.WebSockets.Tests.Interop;

/// <summary>Records what a client connection receives, for the interop scenario.</summary>
internal sealed class RecordingHandler : WebSocketHandler
{
    public Channel<ReceivedMessage> Messages { get; } = Channel.CreateUnbounded<ReceivedMessage>();

    public Channel<string> Pongs { get; } = Channel.CreateUnbounded<string>();

    public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
    {
        Messages.Writer.TryWrite(new ReceivedMessage(message.Type, message.ToArray()));
        return ValueTask.CompletedTask;
    }

    public override ValueTask OnPongAsync(WebSocketConnection connection, System.Buffers.ReadOnlySequence<byte> payload)
    {
        Pongs.Writer.TryWrite(System.Text.Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(payload)));
        return ValueTask.CompletedTask;
    }

    public async Task<ReceivedMessage> NextAsync() => await Messages.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
}

/// <summary>The interop scenario, from both sides.</summary>
internal static class Scenario
{
    /// <summary>
    /// Our client against a peer server speaking the probe protocol: text, binary, empty, fragmented, 16 MiB,
    /// ping/pong both ways, server-side fragmentation, and close with code and reason both ways.
    /// </summary>
    public static async Task RunOurClientAsync(Uri url, bool peerCanPing = true)
    {
        var handler = new RecordingHandler();
        var options = new WebSocketClientOptions { Handler = handler, Connection = new() { MaxMessageSize = 64 * 1024 * 1024 } };
        WebSocketConnection c = await WebSocketClient.ConnectAsync(url, options);

        c.SendText("hello");
        ReceivedMessage m = await handler.NextAsync();
        Assert.Equal((MessageType.Text, "hello"), (m.Type, m.Text));
        c.Send(MessageType.Binary, [0, 1, 2, 255]);
        m = await handler.NextAsync();
        Assert.Equal(MessageType.Binary, m.Type);
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, m.Data);
        c.SendText("");
        m = await handler.NextAsync();
        Assert.Equal((MessageType.Text, 0), (m.Type, m.Data.Length));
        c.Send(MessageType.Binary, ReadOnlySpan<byte>.Empty);
        m = await handler.NextAsync();
        Assert.Equal((MessageType.Binary, 0), (m.Type, m.Data.Length));
        c.SendFragment(MessageType.Text, "frag-"u8, isFirst: true, endOfMessage: false);
        c.SendFragment(MessageType.Text, "ment"u8, isFirst: false, endOfMessage: true);
        m = await handler.NextAsync();
        Assert.Equal((MessageType.Text, "frag-ment"), (m.Type, m.Text));
        byte[] big = new byte[16 * 1024 * 1024];
        Random.Shared.NextBytes(big);
        c.Send(MessageType.Binary, big);
        m = await handler.NextAsync();
        Assert.True(big.AsSpan().SequenceEqual(m.Data), "16 MiB message came back different");
        c.SendPing("from-switchboard"u8);
        Assert.Equal("from-switchboard", await handler.Pongs.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        if (peerCanPing)
        {
            c.SendText("ping:from-peer");
            Assert.Equal("pong:from-peer", (await handler.NextAsync()).Text);
        }

        c.SendText("frag:3:abcdefgh");
        Assert.Equal("abcdefgh", (await handler.NextAsync()).Text);

        WebSocketCloseStatus closed = await c.CloseAsync(4001, "bye from switchboard").WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(4001, closed.Code);
        Assert.True(closed.WasClean);

        WebSocketConnection c2 = await WebSocketClient.ConnectAsync(url, new() { Handler = new RecordingHandler() });
        c2.SendText("close:4002:server bye");
        Assert.Equal(new WebSocketCloseStatus(4002, "server bye", true), await c2.Completion.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    /// <summary>Asserts the JSON a foreign client printed after running the scenario against our /probe.</summary>
    public static async Task AssertForeignClientResultAsync(TestServer server, string tag, string json, string name, bool canFragment = true, bool canPing = true)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        JsonElement r = doc.RootElement;
        Assert.False(r.TryGetProperty("error", out JsonElement err), $"{name} reported: {err}");
        var steps = new List<string> { "text", "binary", "emptyText", "emptyBinary", "big16MiB", "serverPing", "serverFragmented" };
        if (canFragment)
        {
            steps.Add("fragmented");
        }

        if (canPing)
        {
            steps.Add("clientPing");
        }

        foreach (string step in steps)
        {
            Assert.True(r.GetProperty(step).GetBoolean(), $"{name}: step '{step}' failed: {json}");
        }

        Assert.Equal(4001, r.GetProperty("clientClose").GetProperty("code").GetInt32());
        Assert.Equal(4002, r.GetProperty("serverClose").GetProperty("code").GetInt32());
        Assert.Equal("server bye", r.GetProperty("serverClose").GetProperty("reason").GetString());

        // Our side saw the peer's close code and reason, and a clean closing handshake.
        WebSocketCloseStatus seen = await server.ProbeClosed(tag).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(new WebSocketCloseStatus(4001, $"bye from {name}", true), seen);
    }
}
