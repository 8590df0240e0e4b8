namespace Switchboard.Cli.Bench;

/// <summary>CPU time and resident memory of the server process under test, read from /proc.</summary>
internal sealed class ServerProbe(int? pid)
{
    private const double TicksPerSecond = 100; // USER_HZ on Linux

    public bool Available => pid is int p && File.Exists($"/proc/{p}/stat");

    /// <summary>User + system CPU seconds consumed so far.</summary>
    public double CpuSeconds()
    {
        if (!Available)
        {
            return 0;
        }

        string stat = File.ReadAllText($"/proc/{pid}/stat");
        string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(f[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(f[12], System.Globalization.CultureInfo.InvariantCulture)) / TicksPerSecond;
    }

    /// <summary>Resident set size in bytes.</summary>
    public long ResidentBytes()
    {
        if (!Available)
        {
            return 0;
        }

        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }
}
