using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Switchboard.Benchmarks;

/// <summary>Adds a GB/s column computed from each benchmark's Size parameter (bytes processed per operation).</summary>
public static class BenchConfig
{
    public static IConfig Create() => DefaultConfig.Instance
        .AddColumn(new ThroughputColumn())
        .AddDiagnoser(MemoryDiagnoser.Default)
        .WithOptions(ConfigOptions.JoinSummary);

    private sealed class ThroughputColumn : IColumn
    {
        public string Id => "Throughput";
        public string ColumnName => "GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Bytes processed per second (Size / Mean), in 10^9 bytes";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var size = benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Name == "Size")?.Value;
            var report = summary[benchmarkCase];
            if (size is null || report?.ResultStatistics is null)
            {
                return "-";
            }

            double bytes = Convert.ToDouble(size, System.Globalization.CultureInfo.InvariantCulture);
            return (bytes / report.ResultStatistics.Mean).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture);
        }

        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    }
}
