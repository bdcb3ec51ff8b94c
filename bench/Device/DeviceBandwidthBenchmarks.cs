using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using ILGPU;
using ILGPU.Runtime;
using TaskMerge.Engine.Optim;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Bench.Device;

/// <summary>
/// The memory-bound kernels of the device backend — elementwise ops, reductions, the fused Adam step —
/// on 32 Mi floats (128 MiB per operand), each next to a device-to-device copy (cuMemcpy) of the bytes
/// the op reads and writes, the baseline of its row pair: the <c>% of D2D copy</c> column is how close the
/// kernel gets to the device's practical bandwidth. Every invocation ends with a device synchronisation.
/// Run: <c>TaskMerge.Bench --filter '*DeviceBandwidth*' --inProcess</c>.
/// </summary>
[BenchmarkCategory(CudaDevice.Category)]
[Config(typeof(Columns))]
[WarmupCount(3)]
[IterationCount(15)]
public class DeviceBandwidthBenchmarks
{
    private const int N = 32 << 20;

    private IBackend _be = null!;
    private Tensor _a = null!, _b = null!, _c = null!, _d = null!;
    private MemoryBuffer1D<byte, Stride1D.Dense> _copySource = null!, _copyTarget = null!;
    private int _step;

    [Params("add", "mul", "scale", "axpy", "copy", "fill", "sum", "sum_squares", "dot", "max_abs", "adam")]
    public string Op { get; set; } = "add";

    /// <summary>Bytes an op reads plus writes over N elements (reduction partials are negligible).</summary>
    public static double BytesMoved(string op) => op switch
    {
        "add" or "mul" or "axpy" => 12.0 * N,
        "scale" or "copy" or "dot" => 8.0 * N,
        "fill" or "sum" or "sum_squares" or "max_abs" => 4.0 * N,
        "adam" => 28.0 * N,
        _ => throw new ArgumentException($"unknown op {op}"),
    };

    [GlobalSetup]
    public void Setup()
    {
        _be = CudaDevice.Backend;
        (_a, _b, _c, _d) = (_be.Empty(N), _be.Empty(N), _be.Empty(N), _be.Zeros(N));
        _be.FillNormal(_a, 1, 1);
        _be.FillNormal(_b, 1, 2);
        _be.Fill(_c, 0f);
        var accelerator = CudaDevice.Backend.Accelerator;
        long half = (long)(BytesMoved("adam") / 2);
        _copySource = accelerator.Allocate1D<byte>(half);
        _copyTarget = accelerator.Allocate1D<byte>(half);
        _copySource.MemSetToZero();
        CudaDevice.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _a, _b, _c, _d }) t.Dispose();
        _copySource.Dispose();
        _copyTarget.Dispose();
    }

    /// <summary>cuMemcpy device→device of half the op's bytes: it reads and writes the same total.</summary>
    [Benchmark(Baseline = true, Description = "D2D copy, same bytes")]
    public void DeviceCopy()
    {
        long bytes = (long)(BytesMoved(Op) / 2);
        _copySource.AsArrayView<byte>(0, bytes).CopyTo(_copyTarget.AsArrayView<byte>(0, bytes));
        CudaDevice.Synchronize();
    }

    [Benchmark(Description = "kernel")]
    public double Kernel()
    {
        double r = 0;
        switch (Op)
        {
            case "add": _be.Add(_a, _b, _c); break;
            case "mul": _be.Mul(_a, _b, _c); break;
            case "scale": _be.Scale(_a, 1.5f, _c); break;
            case "axpy": _be.Axpy(0.5f, _a, _c); break;
            case "copy": _be.Copy(_a, _c); break;
            case "fill": _be.Fill(_c, 0.25f); break;
            case "sum": r = _be.Sum(_a); break;
            case "sum_squares": r = _be.SumSquares(_a); break;
            case "dot": r = _be.Dot(_a, _b); break;
            case "max_abs": r = _be.MaxAbs(_a); break;
            case "adam": _be.AdamStep(_c, _a, _b, _d, ++_step, new AdamSettings(1e-5f)); break;
        }
        CudaDevice.Synchronize();
        return r;
    }

    private sealed class Columns : ManualConfig
    {
        public Columns() => AddColumnProvider(new BandwidthColumns(c => BytesMoved((string)c.Parameters["Op"])));
    }
}
