namespace Switchboard.Cli.Bench;

/// <summary>
/// A log-linear latency histogram in the manner of HdrHistogram (which the package source does not carry):
/// microsecond values, exact below 128 µs, then 64 linear buckets per power of two (≤ 1.6% error); constant
/// memory; thread-safe recording with interlocked increments.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int Linear = 128;
    private const int PerMagnitude = 64;
    private readonly long[] _counts = new long[Linear + (PerMagnitude * 58)];
    private long _total;
    private long _max;

    public long Count => Interlocked.Read(ref _total);

    public long Max => Interlocked.Read(ref _max);

    public void Record(long microseconds)
    {
        long v = Math.Max(0, microseconds);
        Interlocked.Increment(ref _counts[Index(v)]);
        Interlocked.Increment(ref _total);
        long max;
        while (v > (max = Interlocked.Read(ref _max)) && Interlocked.CompareExchange(ref _max, v, max) != max)
        {
        }
    }

    private int Index(long v)
    {
        if (v < Linear)
        {
            return (int)v;
        }

        int m = 63 - (int)long.LeadingZeroCount(v) - 6; // v >> m lands in [64, 128)
        int index = Linear + ((m - 1) * PerMagnitude) + (int)((v >> m) - PerMagnitude);
        return Math.Min(index, _counts.Length - 1);
    }

    private static long UpperBound(int index)
    {
        if (index < Linear)
        {
            return index;
        }

        int m = ((index - Linear) / PerMagnitude) + 1;
        long sub = ((index - Linear) % PerMagnitude) + PerMagnitude;
        return ((sub + 1) << m) - 1;
    }

    /// <summary>The value at percentile <paramref name="p"/> (0–100), in microseconds.</summary>
    public long Percentile(double p)
    {
        long total = Count;
        if (total == 0)
        {
            return 0;
        }

        long rank = Math.Max(1, (long)Math.Ceiling(p / 100 * total));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += Interlocked.Read(ref _counts[i]);
            if (seen >= rank)
            {
                return Math.Min(UpperBound(i), Max);
            }
        }

        return Max;
    }
}
