using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Switchboard.Server;

/// <summary>
/// Renders a server's Switchboard instruments (System.Diagnostics.Metrics, meters "Switchboard.*") in the
/// Prometheus text exposition format 0.0.4 for <c>GET /metrics</c>. Observable instruments are read at scrape
/// time; histograms are aggregated into cumulative buckets as they are recorded.
/// </summary>
/// <remarks>
/// Not OpenTelemetry's Prometheus exporter: OpenTelemetry subscribes to meters by name, so with two servers in one
/// process each scrape would show both servers' counts. This listener takes only the meters of its server's
/// <see cref="IMeterFactory"/>, with their tags as labels (docs/architecture.md). OTLP export goes through OpenTelemetry.
/// </remarks>
public sealed class PrometheusExporter : IDisposable
{
    private static readonly double[] Bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(Instrument Instrument, string Labels), double> _values = new();
    private readonly ConcurrentDictionary<Instrument, HistogramState> _histograms = new();
    private readonly object _scrape = new();

    private sealed class HistogramState
    {
        public readonly long[] Buckets = new long[Bounds.Length + 1];
        public long Count;
        public double Sum;
    }

    /// <summary>
    /// Starts listening to the Switchboard meters that <paramref name="meterFactory"/> created (this server's; another
    /// server in the same process has its own), or to every Switchboard meter in the process when null.
    /// </summary>
    public PrometheusExporter(IMeterFactory? meterFactory = null)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name.StartsWith("Switchboard", StringComparison.Ordinal) && (meterFactory is null || ReferenceEquals(instrument.Meter.Scope, meterFactory)))
            {
                listener.EnableMeasurementEvents(instrument);
                if (instrument is Histogram<double> or Histogram<long> or Histogram<int>)
                {
                    _histograms.GetOrAdd(instrument, _ => new HistogramState()); // listed (empty) before its first measurement
                }
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    /// <summary>Prometheus labels for a measurement's tags, sorted by name: <c>{code="1000",endpoint="/hub"}</c>, or empty.</summary>
    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return string.Empty;
        }

        var sorted = tags.ToArray();
        Array.Sort(sorted, (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var sb = new StringBuilder("{");
        foreach (var (key, value) in sorted)
        {
            string text = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
            sb.Append(sb.Length > 1 ? "," : "").Append(key).Append("=\"")
              .Append(text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('"');
        }

        return sb.Append('}').ToString();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (instrument is Histogram<double> or Histogram<long> or Histogram<int>)
        {
            HistogramState h = _histograms.GetOrAdd(instrument, _ => new HistogramState());
            lock (h)
            {
                int i = 0;
                while (i < Bounds.Length && value > Bounds[i])
                {
                    i++;
                }

                h.Buckets[i]++;
                h.Count++;
                h.Sum += value;
            }
        }
        else if (instrument.IsObservable)
        {
            _values[(instrument, Labels(tags))] = value; // observable: the callback reports the current total
        }
        else
        {
            _values.AddOrUpdate((instrument, Labels(tags)), value, (_, old) => old + value);
        }
    }

    /// <summary>The current exposition text.</summary>
    public string Scrape()
    {
        lock (_scrape)
        {
            _listener.RecordObservableInstruments();
            var sb = new StringBuilder();
            Instrument? previous = null;
            foreach (var ((instrument, labels), value) in _values.OrderBy(kv => kv.Key.Instrument.Name, StringComparer.Ordinal).ThenBy(kv => kv.Key.Labels, StringComparer.Ordinal))
            {
                if (!ReferenceEquals(instrument, previous))
                {
                    string type = instrument.GetType().Name.StartsWith("ObservableGauge", StringComparison.Ordinal) || instrument.GetType().Name.StartsWith("UpDown", StringComparison.Ordinal) || instrument.GetType().Name.StartsWith("ObservableUpDown", StringComparison.Ordinal) ? "gauge" : "counter";
                    Header(sb, instrument, type); // once per metric, then one line per label set
                    previous = instrument;
                }

                sb.Append(instrument.Name).Append(labels).Append(' ').Append(Format(value)).Append('\n');
            }

            foreach (var (instrument, h) in _histograms.OrderBy(kv => kv.Key.Name, StringComparer.Ordinal))
            {
                Header(sb, instrument, "histogram");
                lock (h)
                {
                    long cumulative = 0;
                    for (int i = 0; i < Bounds.Length; i++)
                    {
                        cumulative += h.Buckets[i];
                        sb.Append(instrument.Name).Append("_bucket{le=\"").Append(Format(Bounds[i])).Append("\"} ").Append(cumulative).Append('\n');
                    }

                    sb.Append(instrument.Name).Append("_bucket{le=\"+Inf\"} ").Append(h.Count).Append('\n');
                    sb.Append(instrument.Name).Append("_sum ").Append(Format(h.Sum)).Append('\n');
                    sb.Append(instrument.Name).Append("_count ").Append(h.Count).Append('\n');
                }
            }

            return sb.ToString();
        }
    }

    private static void Header(StringBuilder sb, Instrument instrument, string type)
    {
        if (instrument.Description is { Length: > 0 } d)
        {
            sb.Append("# HELP ").Append(instrument.Name).Append(' ').Append(d.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        }

        sb.Append("# TYPE ").Append(instrument.Name).Append(' ').Append(type).Append('\n');
    }

    private static string Format(double v) => v.ToString("G17", CultureInfo.InvariantCulture);

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();
}
