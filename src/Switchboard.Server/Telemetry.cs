using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Switchboard.Server;

/// <summary>OTLP export settings, section <c>Switchboard:Otlp</c>.</summary>
public sealed class OtlpOptions
{
    /// <summary>
    /// The collector's OTLP/HTTP base address (e.g. <c>http://127.0.0.1:4318</c>): traces go to <c>/v1/traces</c>, metrics
    /// to <c>/v1/metrics</c>. Null: no export (unless the standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set).
    /// </summary>
    public string? Endpoint { get; set; }

    /// <summary>How often metrics are exported, and the longest a finished span waits to be sent. Default 60 s.</summary>
    public TimeSpan ExportInterval { get; set; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// OpenTelemetry for the server when an OTLP endpoint is configured: Switchboard's traces and meters, the runtime's
/// and ASP.NET Core's, exported over OTLP/HTTP. (The Prometheus text on <c>/metrics</c> is served either way.)
/// </summary>
internal static class Telemetry
{
    public static void AddIfConfigured(WebApplicationBuilder builder, OtlpOptions options)
    {
        string? endpoint = options.Endpoint ?? Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT");
        if (string.IsNullOrEmpty(endpoint))
        {
            return;
        }

        var root = new Uri(endpoint.TrimEnd('/') + "/");
        int interval = (int)options.ExportInterval.TotalMilliseconds;
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("switchboard"))
            .WithTracing(t => t
                .AddSource(Hub.HubTracing.SourceName, WebSockets.WebSocketTracing.SourceName)
                .AddAspNetCoreInstrumentation()
                .AddOtlpExporter(o =>
                {
                    o.Protocol = OtlpExportProtocol.HttpProtobuf;
                    o.Endpoint = new Uri(root, "v1/traces");
                    o.BatchExportProcessorOptions.ScheduledDelayMilliseconds = interval;
                }))
            .WithMetrics(m => m
                .AddMeter(Hub.HubMetrics.MeterName, WebSockets.WebSocketMetrics.MeterName, ServerMetrics.MeterName, Redis.RedisBroker.MeterName)
                .AddRuntimeInstrumentation()
                .AddAspNetCoreInstrumentation()
                .AddOtlpExporter((o, reader) =>
                {
                    o.Protocol = OtlpExportProtocol.HttpProtobuf;
                    o.Endpoint = new Uri(root, "v1/metrics");
                    reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = interval;
                }));
    }
}
