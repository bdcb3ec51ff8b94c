using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using ILGPU;
using ILGPU.Runtime;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Ilgpu;

namespace TaskMerge.Bench.Device;

/// <summary>
/// TIES/DARE top-k threshold selection (<see cref="IMergeOps.KeepTopKMagnitude"/>: two radix histogram
/// passes, a tie count and a masking pass) on a 16 Mi-float tensor (a 4096×4096 weight). Selection works
/// in place, so every invocation first restores the input with a device copy; that restore alone is the
/// baseline, and <c>top-k alone</c> is the difference. Run: <c>TaskMerge.Bench --filter '*DeviceSelect*' --inProcess</c>.
/// </summary>
[BenchmarkCategory(CudaDevice.Category)]
[Config(typeof(Columns))]
[WarmupCount(3)]
[IterationCount(15)]
public class DeviceSelectBenchmarks
{
    private const int N = 16 << 20;

    private IlgpuBackend _be = null!;
    private Tensor _pristine = null!, _x = null!;

    [Params(0.1, 0.5, 0.9)]
    public double Density { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _be = CudaDevice.Backend;
        _pristine = _be.Empty(N);
        _x = _be.Empty(N);
        _be.FillNormal(_pristine, 3, 1);
        CudaDevice.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pristine.Dispose();
        _x.Dispose();
    }

    [Benchmark(Baseline = true, Description = "restore (D2D copy)")]
    public void Restore()
    {
        _be.ViewOf(_pristine).CopyTo(_be.ViewOf(_x));
        CudaDevice.Synchronize();
    }

    [Benchmark(Description = "restore + keep top-k")]
    public void RestoreAndSelect()
    {
        _be.ViewOf(_pristine).CopyTo(_be.ViewOf(_x));
        _be.KeepTopKMagnitude(_x, (long)(Density * N));
        CudaDevice.Synchronize();
    }

    private sealed class Columns : ManualConfig
    {
        public Columns() => AddColumn(new BandwidthColumns.Column("top-k alone (ms)", "Mean minus the restore baseline",
            (s, c) =>
            {
                var baseline = s.GetBaseline(s.GetLogicalGroupKey(c));
                if (baseline is null || s[c]?.ResultStatistics is not { } st || s[baseline]?.ResultStatistics is not { } bs) return "NA";
                return ((st.Mean - bs.Mean) / 1e6).ToString("F3", System.Globalization.CultureInfo.InvariantCulture);
            }));
    }
}
