using System.Text.Json;
using Switchboard.Protocol;
using Switchboard.WebSockets;

namespace Switchboard.Hub.Tests;

/// <summary>A member that stops reading is taken off the live stream and recovers from history: over real sockets.</summary>
public class SlowConsumerTests
{
    private sealed class StallingReader : WebSocketHandler
    {
        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Joined { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource<long> Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public List<long> Offsets { get; } = [];
        public List<string> Notices { get; } = [];
        public int Lagging;
        public long Target;

        public override async ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            using JsonDocument doc = JsonDocument.Parse(message.Data);
            string type = doc.RootElement.GetProperty("type").GetString()!;
            if (type == "joined")
            {
                Joined.TrySetResult();
            }
            else if (type == "lagging")
            {
                Lagging++;
                Notices.Add("lagging " + doc.RootElement.GetProperty("offset").GetInt64());
            }
            else if (type != "message")
            {
                Notices.Add(doc.RootElement.GetRawText()); // e.g. a gap notice: shown if the offsets are wrong
            }
            else if (type == "message")
            {
                await Gate.Task; // the application stops reading: the socket fills up behind it
                long offset = doc.RootElement.GetProperty("offset").GetInt64();
                Offsets.Add(offset);
                if (offset == Target)
                {
                    Reached.TrySetResult(offset);
                }
            }
        }
    }

    [Fact]
    public async Task A_reader_that_stalls_gets_every_message_once_in_order_after_a_lagging_notice()
    {
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom("slow");
        const int count = 20_000;
        var reader = new StallingReader { Target = count };
        WebSocketConnection ws = await WebSocketClient.ConnectAsync(new Uri(server.Ws, "/hub?name=stalling"), new() { Handler = reader });
        ws.SendText($"{{\"type\":\"join\",\"room\":\"{room}\"}}");
        await reader.Joined.Task.WaitAsync(TimeSpan.FromSeconds(30));

        string text = new('x', 1000);
        var from = new HubIdentity("firehose", "Firehose");
        for (int i = 0; i < count; i += 1000)
        {
            // ~20 MB in all: far past the socket buffers and the 1 MiB live limit while the reader is stalled.
            await Task.WhenAll(Enumerable.Range(i, 1000).Select(k => server.Hub.PublishAsync(room, from, text)));
        }

        reader.Gate.TrySetResult();
        await reader.Reached.Task.WaitAsync(TimeSpan.FromSeconds(120));
        Assert.True(Enumerable.Range(1, count).Select(i => (long)i).SequenceEqual(reader.Offsets),
            $"offsets: {reader.Offsets.Count} received, first break after {reader.Offsets.Zip(reader.Offsets.Skip(1)).FirstOrDefault(p => p.Second != p.First + 1)}; notices: {string.Join(" | ", reader.Notices.Take(20))}");
        Assert.True(reader.Lagging >= 1, "the member was told it had fallen behind");
        Assert.Equal(Protocol.WebSocketState.Open, ws.State); // never disconnected
        ws.Abort();
    }
}
