using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using TaskMerge.Engine.Native;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Ilgpu;

namespace TaskMerge.Bench.Device;

/// <summary>
/// The GEMM-bound steps on the device: the backend's <see cref="ILinearAlgebraOps.Gemm"/> (row-major, mapped onto
/// cuBLAS) against a direct <c>cublasSgemm_v2</c> call on the same buffers and shape (the baseline: the
/// mapping should cost nothing), and the ILGPU tiled kernel the backend falls back to without cuBLAS.
/// Shapes: m×n×k of C[m×n] = A[m×k]·B[k×n] — a ViT-B 768² layer, WUDI's per-step τ_m·C for fc1
/// ([3072,768]·[768,768]) and fc2 ([768,3072]·[3072,3072]), and a ViT-B/32 qkv projection over a batch of
/// 32 images (1600 tokens). TF32 follows <c>TASKMERGE_TF32</c> (off: real FP32, as WUDI needs).
/// Run: <c>TaskMerge.Bench --filter '*DeviceGemm*' --inProcess</c>.
/// </summary>
[BenchmarkCategory(CudaDevice.Category)]
[Config(typeof(Columns))]
[WarmupCount(3)]
[IterationCount(10)]
public class DeviceGemmBenchmarks
{
    private IlgpuBackend _be = null!;
    private Tensor _a = null!, _b = null!, _c = null!;
    private int _m, _n, _k;

    [Params("768x768x768", "3072x768x768", "768x3072x3072", "1600x2304x768")]
    public string Shape { get; set; } = "768x768x768";

    private static (int M, int N, int K) Parse(string shape)
    {
        var d = shape.Split('x').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        return (d[0], d[1], d[2]);
    }

    [GlobalSetup]
    public void Setup()
    {
        _be = CudaDevice.Backend;
        if (_be.Diagnostics.Cublas is null) throw new InvalidOperationException($"no cuBLAS to compare with: {_be.MatrixEngine}");
        (_m, _n, _k) = Parse(Shape);
        _a = _be.Empty(_m, _k);
        _b = _be.Empty(_k, _n);
        _c = _be.Empty(_m, _n);
        _be.FillNormal(_a, 4, 1);
        _be.FillNormal(_b, 4, 2);
        CudaDevice.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _be.Diagnostics.ForceKernelMatrixOps = false;
        foreach (var t in new[] { _a, _b, _c }) t.Dispose();
    }

    /// <summary>Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: B first, dimensions (n, m, k).</summary>
    [Benchmark(Baseline = true, Description = "cublasSgemm_v2 direct")]
    public void CublasDirect()
    {
        _be.Accelerator.Bind();
        CudaStatus.CheckCublas(Cublas.cublasSgemm_v2(_be.Diagnostics.Cublas!.Handle, CublasOperation.N, CublasOperation.N, _n, _m, _k, 1f,
            _be.Diagnostics.DevicePointer(_b), _n, _be.Diagnostics.DevicePointer(_a), _k, 0f, _be.Diagnostics.DevicePointer(_c), _n), nameof(Cublas.cublasSgemm_v2));
        CudaDevice.Synchronize();
    }

    [Benchmark(Description = "IBackend.Gemm")]
    public void BackendGemm()
    {
        _be.Gemm(_a, false, _b, false, _c);
        CudaDevice.Synchronize();
    }

    [Benchmark(Description = "ILGPU tiled kernel")]
    public void TiledKernel()
    {
        _be.Diagnostics.ForceKernelMatrixOps = true;
        try
        {
            _be.Gemm(_a, false, _b, false, _c);
            CudaDevice.Synchronize();
        }
        finally
        {
            _be.Diagnostics.ForceKernelMatrixOps = false;
        }
    }

    private sealed class Columns : ManualConfig
    {
        public Columns() => AddColumn(new BandwidthColumns.Column("GFLOP/s", "2·m·n·k over the mean time",
            (s, c) =>
            {
                if (s[c]?.ResultStatistics is not { } st) return "NA";
                var (m, n, k) = Parse((string)c.Parameters["Shape"]);
                return (2.0 * m * n * k / st.Mean).ToString("F0", CultureInfo.InvariantCulture);
            }));
    }
}
