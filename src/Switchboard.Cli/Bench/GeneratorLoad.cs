using System.Diagnostics;

namespace Switchboard.Cli.Bench;

/// <summary>
/// The load generator's own CPU use over a measured window. A generator that is itself busy all the time adds its own
/// queueing to what it measures: a message waits in the socket until the generator gets to it (latencies), and the
/// next connection or message waits until it has time to make it (rates). So each result
/// says how busy the generator was, as a share of the CPUs it may run on (its affinity, e.g. `taskset`), and a share of
/// <see cref="SaturatedShare"/> or more is reported as a warning.
/// </summary>
internal readonly struct GeneratorLoad
{
    /// <summary>From this share of its CPUs on, the generator's own delays are a visible part of the latencies.</summary>
    public const double SaturatedShare = 0.9;

    private readonly TimeSpan _cpu0;
    private readonly long _clock0;

    private GeneratorLoad(TimeSpan cpu0, long clock0)
    {
        _cpu0 = cpu0;
        _clock0 = clock0;
    }

    /// <summary>The CPUs this process may run on.</summary>
    public static int Cpus => Environment.ProcessorCount;

    /// <summary>Starts a window now.</summary>
    public static GeneratorLoad Start() => new(Environment.CpuUsage.TotalTime, Stopwatch.GetTimestamp());

    /// <summary>CPU seconds the generator used since <see cref="Start"/>, and their share of its CPUs over that time.</summary>
    public (double CpuSeconds, double Share) Stop()
    {
        double cpu = (Environment.CpuUsage.TotalTime - _cpu0).TotalSeconds;
        return (cpu, Share(cpu, Stopwatch.GetElapsedTime(_clock0).TotalSeconds, Cpus));
    }

    /// <summary>CPU seconds as a share of <paramref name="cpus"/> CPUs over <paramref name="seconds"/>.</summary>
    public static double Share(double cpuSeconds, double seconds, int cpus) =>
        seconds > 0 && cpus > 0 ? cpuSeconds / (seconds * cpus) : 0;

    /// <summary>The warning for a generator this busy, or null.</summary>
    public static string? Warning(double share, int cpus) => share >= SaturatedShare
        ? $"warning: the load generator used {share * 100:0}% of the {cpus} CPU{(cpus == 1 ? "" : "s")} it may run on: its own " +
          "delays are part of what it measured (give it more CPU, or less load)"
        : null;
}
