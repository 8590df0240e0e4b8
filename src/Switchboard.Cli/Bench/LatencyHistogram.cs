using HdrHistogram;

namespace Switchboard.Cli.Bench;

/// <summary>
/// End-to-end latencies in microseconds, recorded from many threads at once: HdrHistogram's concurrent histogram
/// (1 µs to 10 minutes, three significant digits: at most 0.1% error at any value), so percentiles are exact to that
/// precision and recording costs a few nanoseconds without locks.
/// </summary>
internal sealed class LatencyHistogram
{
    private const long Highest = 600_000_000; // 10 minutes: a latency past it is recorded as 10 minutes
    private readonly LongConcurrentHistogram _histogram = new(1, Highest, 3);

    public long Count => _histogram.TotalCount;

    public long Max => Count == 0 ? 0 : _histogram.GetMaxValue();

    public void Record(long microseconds) => _histogram.RecordValue(Math.Clamp(microseconds, 1, Highest));

    /// <summary>The value at percentile <paramref name="p"/> (0–100), in microseconds.</summary>
    public long Percentile(double p) => Count == 0 ? 0 : _histogram.GetValueAtPercentile(p);
}
