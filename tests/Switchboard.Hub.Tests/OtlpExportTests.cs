using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Switchboard.Server;

namespace Switchboard.Hub.Tests;

/// <summary>With an OTLP endpoint configured, traces and metrics (Switchboard's and the runtime's) reach a collector over OTLP/HTTP.</summary>
public class OtlpExportTests
{
    [Fact]
    public async Task Traces_and_metrics_are_exported_to_the_configured_endpoint()
    {
        // A stand-in collector: records what arrives on the OTLP/HTTP paths, and says when everything expected has.
        var received = new ConcurrentQueue<(string Path, string? Type, byte[] Body)>();
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously); // set once everything expected has arrived
        string room = HubTestServer.NewRoom();
        bool Seen(string path, string text) => received.Any(r => r.Path == path && r.Type == "application/x-protobuf" && Encoding.UTF8.GetString(r.Body).Contains(text, StringComparison.Ordinal));
        bool All() => Seen("/v1/traces", room) && Seen("/v1/metrics", "switchboard_hub_messages_in_total") && Seen("/v1/metrics", "dotnet.");
        WebApplicationBuilder collectorBuilder = WebApplication.CreateSlimBuilder();
        collectorBuilder.WebHost.UseUrls("http://127.0.0.1:0");
        collectorBuilder.Logging.ClearProviders();
        await using WebApplication collector = collectorBuilder.Build();
        collector.MapPost("/v1/{signal}", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            received.Enqueue((context.Request.Path, context.Request.ContentType, body.ToArray()));
            if (All())
            {
                arrived.TrySetResult();
            }

            return Results.Ok();
        });
        await collector.StartAsync();

        HubTestServer server = await HubTestServer.StartAsync(o =>
        {
            o.Store = "memory";
            o.Otlp = new OtlpOptions { Endpoint = SwitchboardServer.GetAddresses(collector)[0], ExportInterval = TimeSpan.FromMilliseconds(300) };
        });
        try
        {
            await using var c = await HubClient.ConnectAsync(server.Ws, "traced");
            await c.PublishAsync(room, "exported");
            await Task.WhenAny(arrived.Task, Task.Delay(TimeSpan.FromSeconds(30))); // exports run every 300 ms here
            Assert.True(Seen("/v1/traces", room), "the publish's spans (they carry the room) were exported");
            Assert.True(Seen("/v1/metrics", "switchboard_hub_messages_in_total"), "Switchboard's metrics were exported");
            Assert.True(Seen("/v1/metrics", "dotnet."), "the runtime's metrics were exported");
        }
        finally
        {
            await server.App.StopAsync();
            await server.App.DisposeAsync();
            await collector.StopAsync();
        }
    }
}
