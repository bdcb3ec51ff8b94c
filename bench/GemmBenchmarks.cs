using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using TaskMerge.Engine.Tensors.Cpu;

namespace TaskMerge.Bench;

/// <summary>
/// CpuBlas throughput at transformer-layer shapes. The GFLOP/s column counts 2·m·n·k for SGEMM and
/// n·(n+1)·k for SSYRK (the arithmetic a triangle-only SYRK must do, not the GEMM-equivalent 2·n²·k).
/// Run: <c>dotnet run -c Release --project bench -- --filter '*GemmBenchmarks*' --inProcess</c> (the
/// in-process toolchain is needed because the assembly name differs from the project name).
/// </summary>
[Config(typeof(GflopsConfig))]
public class GemmBenchmarks
{
    private const int D = 768, Rows = 3072;

    private float[] _a = [], _b = [], _c = [], _tall = [], _tallC = [], _gramC = [];

    /// <summary>One thread, and every core (the <see cref="CpuBackend"/> default).</summary>
    public static IEnumerable<int> ThreadCounts => new[] { 1, Environment.ProcessorCount }.Distinct();

    [ParamsSource(nameof(ThreadCounts))]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        float[] Random(int count)
        {
            var x = new float[count];
            for (int i = 0; i < count; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            return x;
        }
        _a = Random(D * D);
        _b = Random(D * D);
        _c = new float[D * D];
        _tall = Random(Rows * D);
        _tallC = new float[Rows * D];
        _gramC = new float[D * D];
    }

    /// <summary>C[768×768] = A[768×768]·B[768×768].</summary>
    [Benchmark(Description = "sgemm 768x768x768")]
    public void Sgemm768() => CpuBlas.Sgemm(false, false, D, D, D, 1f, _a, D, _b, D, 0f, _c, D, Threads);

    /// <summary>C[3072×768] = X[3072×768]·W[768×768] (a projection over 3072 rows).</summary>
    [Benchmark(Description = "sgemm 3072x768x768")]
    public void Sgemm3072() => CpuBlas.Sgemm(false, false, Rows, D, D, 1f, _tall, D, _a, D, 0f, _tallC, D, Threads);

    /// <summary>Gram matrix G[768×768] = XᵀX of a 3072×768 X (k = 3072).</summary>
    [Benchmark(Description = "ssyrk n=768 k=3072 (XtX)")]
    public void Ssyrk768() => CpuBlas.Ssyrk(true, D, Rows, 1f, _tall, D, 0f, _gramC, D, Threads);

    /// <summary>Floating-point operations of one call of the named benchmark method.</summary>
    public static double Flops(string method) => method switch
    {
        nameof(Sgemm768) => 2.0 * D * D * D,
        nameof(Sgemm3072) => 2.0 * Rows * D * D,
        nameof(Ssyrk768) => (double)D * (D + 1) * Rows,
        _ => double.NaN,
    };

    /// <summary>Adds the GFLOP/s column.</summary>
    public sealed class GflopsConfig : ManualConfig
    {
        public GflopsConfig() => AddColumn(new GflopsColumn());
    }

    /// <summary>GFLOP/s from the mean time of each case.</summary>
    public sealed class GflopsColumn : IColumn
    {
        public string Id => nameof(GflopsColumn);
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Floating-point throughput at the mean time (2mnk for GEMM, n(n+1)k for SYRK)";

        public bool IsAvailable(Summary summary) => true;

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
            GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (stats is null) return "NA";
            double flops = Flops(benchmarkCase.Descriptor.WorkloadMethod.Name);
            return (flops / stats.Mean).ToString("F1", CultureInfo.InvariantCulture);   // flop/ns = GFLOP/s
        }
    }
}
