using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Switchboard.Hub.Tests;

/// <summary>
/// Traces through OpenTelemetry's in-memory exporter: a publish can be followed from the handshake of its connection
/// to the commit that carried it and the fan-out to the room's members.
/// </summary>
public class TracingTests
{
    [Fact]
    public async Task A_publish_is_traced_through_commit_and_fanout_and_catch_up_and_the_handshake_are_traced()
    {
        var spans = new List<Activity>();
        using TracerProvider tracing = Sdk.CreateTracerProviderBuilder()
            .AddSource(HubTracing.SourceName, WebSockets.WebSocketTracing.SourceName)
            .AddInMemoryExporter(spans)
            .Build()!;
        HubTestServer server = await HubTestServer.Shared;
        string room = HubTestServer.NewRoom();
        await using var member = await HubClient.ConnectAsync(server.Ws, "member");
        await member.ReplyAsync(member.Send(new { type = "join", room }));
        await using var publisher = await HubClient.ConnectAsync(server.Ws, "publisher");
        await publisher.PublishAsync(room, "traced");
        await member.ExpectAsync("message");
        await using var late = await HubClient.ConnectAsync(server.Ws, "late");
        await late.ReplyAsync(late.Send(new { type = "join", room, since = 0 })); // replays offset 1 from history
        await late.ExpectAsync("message");
        tracing.ForceFlush();

        Activity[] mine;
        lock (spans)
        {
            mine = [.. spans.Where(s => Equals(s.GetTagItem("switchboard.room"), room))]; // other tests run alongside
        }

        Activity publish = Assert.Single(mine, s => s.OperationName == "publish");
        Assert.Equal(ActivityStatusCode.Ok, publish.Status);
        Activity append = Assert.Single(mine, s => s.OperationName == "store.append");
        Assert.Contains(append.Links, l => l.Context.SpanId == publish.SpanId && l.Context.TraceId == publish.TraceId);
        Activity fanout = Assert.Single(mine, s => s.OperationName == "fanout");
        Assert.Equal((publish.TraceId, publish.SpanId), (fanout.TraceId, fanout.ParentSpanId)); // the fan-out belongs to the publish's trace
        Assert.Equal(1L, fanout.GetTagItem("switchboard.offset"));
        Assert.Equal(1, fanout.GetTagItem("switchboard.members"));
        Assert.True(publish.StartTimeUtc <= append.StartTimeUtc && append.StartTimeUtc + append.Duration <= publish.StartTimeUtc + publish.Duration,
            "the commit happens within the publish");
        Assert.Contains(mine, s => s.OperationName == "catchup");
        lock (spans)
        {
            Assert.Contains(spans, s => s.OperationName == "handshake" && Equals(s.GetTagItem("url.path"), "/hub") && Equals(s.GetTagItem("switchboard.handshake"), "101"));
        }
    }
}
