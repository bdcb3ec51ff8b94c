using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Ilgpu;

namespace TaskMerge.Bench.Device;

/// <summary>
/// The CUDA backend shared by the device benchmarks (one per process), or why there is none. Device
/// benchmarks carry <see cref="Category"/>; without a device the runner filters them out and prints
/// <see cref="SkipLine"/> instead of letting their setup fail.
/// </summary>
internal static class CudaDevice
{
    /// <summary>Benchmark category of every benchmark that needs a CUDA device.</summary>
    public const string Category = "cuda";

    private static readonly Lazy<(IlgpuBackend? Backend, string Reason)> Created = new(() =>
    {
        var backend = IlgpuBackend.TryCreateCuda(out string reason, allowTf32: Environment.GetEnvironmentVariable("TASKMERGE_TF32") == "1");
        return (backend, reason);
    });

    public static bool Available => Created.Value.Backend is not null;

    public static string SkipLine => $"skipped: no CUDA device ({Created.Value.Reason})";

    /// <summary>The backend; a benchmark's setup only runs when <see cref="Available"/>.</summary>
    public static IlgpuBackend Backend => Created.Value.Backend ?? throw new InvalidOperationException(SkipLine);

    /// <summary>Blocks until every op issued so far has finished, so a benchmark invocation times its own work.</summary>
    public static void Synchronize() => Backend.Accelerator.Synchronize();

    /// <summary>
    /// The backend for an end-to-end run's <c>--device</c>: null, after printing <see cref="SkipLine"/>, when CUDA
    /// is asked for and there is none (so a GPU suite run on a machine without one records a skip, not a crash).
    /// </summary>
    public static IBackend? ForEndToEnd(string device, int threads)
    {
        if (device.Trim().ToLowerInvariant() is "cuda" or "gpu")
        {
            if (!Available) Console.WriteLine(SkipLine);
            return Created.Value.Backend;
        }
        return BackendFactory.Create(device, threads, out _);
    }

    /// <summary>Leaves the device benchmarks out of a run when there is no device, saying so.</summary>
    public static IConfig ExcludeWhenAbsent(IConfig config)
    {
        if (Available) return config;
        Console.WriteLine($"device benchmarks (category '{Category}') {SkipLine}");
        return ManualConfig.Create(config).AddFilter(new SimpleFilter(b => !b.Descriptor.HasCategory(Category)));
    }
}

/// <summary>
/// Effective bandwidth (bytes read + written per second) and its share of a device-to-device copy of the
/// same bytes, the baseline case of each parameter set: the practical memory roofline of the device.
/// </summary>
public sealed class BandwidthColumns(Func<BenchmarkCase, double> bytes) : IColumnProvider
{
    public IEnumerable<IColumn> GetColumns(Summary summary) =>
    [
        new Column("GB/s", "Bytes read + written per second (counted per op, the copy counts its read and its write)",
            (s, c) => s[c]?.ResultStatistics is { } st ? (bytes(c) / st.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) : "NA"),
        new Column("% of D2D copy", "Time of a device-to-device copy of the same bytes over this case's time",
            (s, c) =>
            {
                var baseline = s.GetBaseline(s.GetLogicalGroupKey(c));
                if (baseline is null || s[c]?.ResultStatistics is not { } st || s[baseline]?.ResultStatistics is not { } bs) return "NA";
                return (100 * bs.Mean / st.Mean).ToString("F0", System.Globalization.CultureInfo.InvariantCulture) + "%";
            }),
    ];

    /// <summary>A computed numeric column.</summary>
    public sealed class Column(string name, string legend, Func<Summary, BenchmarkCase, string> value) : IColumn
    {
        public string Id => nameof(BandwidthColumns) + name;
        public string ColumnName => name;
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => legend;
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => value(summary, benchmarkCase);
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => value(summary, benchmarkCase);
    }
}
