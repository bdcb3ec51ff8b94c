using System.Globalization;
using BenchmarkDotNet.Attributes;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using TaskMerge.Engine.Native;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tensors.Ilgpu;

namespace TaskMerge.Bench.Device;

/// <summary>One factorisation case of the solver benchmarks, on ViT-B shapes.</summary>
internal sealed class SolverCase : IDisposable
{
    private readonly IBackend _be;
    private readonly Tensor[] _tensors;
    private readonly Action _run;

    /// <summary>
    /// <c>svd MxN</c> (thin SVD), <c>eigh N</c> (symmetric eigen-decomposition of a Gram matrix) or
    /// <c>cholesky N RHS</c> (B[RHS×N]·(A + ρI)⁻¹ for an SPD A, WUDI's closed form).
    /// </summary>
    public SolverCase(IBackend be, string spec)
    {
        _be = be;
        var parts = spec.Split(' ');
        int Dim(string s) => int.Parse(s, CultureInfo.InvariantCulture);
        switch (parts[0])
        {
            case "svd":
            {
                int m = Dim(parts[1].Split('x')[0]), n = Dim(parts[1].Split('x')[1]), k = Math.Min(m, n);
                var a = Normal(be, 1, m, n);
                var (u, s, vt) = (be.Empty(m, k), be.Empty(k), be.Empty(k, n));
                _tensors = [a, u, s, vt];
                _run = () => be.Svd(a, u, s, vt);
                break;
            }
            case "eigh":
            {
                int n = Dim(parts[1]);
                var x = Normal(be, 2, 2 * n, n);
                var a = be.Empty(n, n);
                be.Syrk(x, true, a, 1f / (2 * n));
                x.Dispose();
                var (w, v) = (be.Empty(n), be.Empty(n, n));
                _tensors = [a, w, v];
                _run = () => be.SymmetricEigen(a, w, v);
                break;
            }
            case "cholesky":
            {
                int n = Dim(parts[1]), rhs = Dim(parts[2]);
                var x = Normal(be, 3, 2 * n, n);
                var a = be.Empty(n, n);
                be.Syrk(x, true, a, 1f / (2 * n));
                x.Dispose();
                var pristine = Normal(be, 4, rhs, n);
                var b = be.Empty(rhs, n);
                _tensors = [a, pristine, b];
                _run = () =>
                {
                    be.Copy(pristine, b);
                    if (!be.CholeskySolve(a, 1e-4, b)) throw new InvalidOperationException("benchmark matrix is not positive definite");
                };
                break;
            }
            default:
                throw new ArgumentException($"unknown solver case '{spec}'");
        }
    }

    private static Tensor Normal(IBackend be, ulong seed, int rows, int cols)
    {
        var t = be.Empty(rows, cols);
        be.FillNormal(t, seed, 0);
        return t;
    }

    /// <summary>Runs the case once; the op's own result download (a host scalar or devInfo) or a final sync bounds it.</summary>
    public void Run()
    {
        _run();
        _be.Sum(_tensors[^1]);
    }

    public void Dispose()
    {
        foreach (var t in _tensors) t.Dispose();
    }
}

/// <summary>
/// <see cref="ILinearAlgebraOps.Svd"/>, <see cref="ILinearAlgebraOps.SymmetricEigen"/> and <see cref="ILinearAlgebraOps.CholeskySolve"/>
/// on the device (cuSOLVER float64 with the float32↔float64 layout kernels) on ViT-B shapes: 768×768 and
/// 3072×768 / 768×3072 weights, Gram matrices of 768 and 3072, and WUDI's closed form for fc1 (C 768×768,
/// D 3072×768). Run: <c>TaskMerge.Bench --filter '*DeviceSolverBenchmarks*' --inProcess</c>.
/// </summary>
[BenchmarkCategory(CudaDevice.Category)]
[WarmupCount(1)]
[IterationCount(5)]
public class DeviceSolverBenchmarks
{
    private SolverCase _case = null!;

    [Params("svd 768x768", "svd 3072x768", "svd 768x3072", "eigh 768", "eigh 3072", "cholesky 768 3072", "cholesky 3072 768")]
    public string Case { get; set; } = "svd 768x768";

    [GlobalSetup]
    public void Setup()
    {
        var be = CudaDevice.Backend;
        if (!be.LinearAlgebraEngine.StartsWith("cuSOLVER", StringComparison.Ordinal))
            Console.WriteLine($"note: factorisations are not on cuSOLVER here: {be.LinearAlgebraEngine}");
        _case = new SolverCase(be, Case);
    }

    [GlobalCleanup]
    public void Cleanup() => _case.Dispose();

    [Benchmark(Description = "device (cuSOLVER, float64)")]
    public void Device() => _case.Run();
}

/// <summary>
/// The ViT-B 768 cases on the device against the CPU backend of the same machine (native LAPACK or the
/// managed fallback, float64; the baseline), so the Ratio column is the device's speed-up.
/// Run: <c>TaskMerge.Bench --filter '*DeviceVsCpuSolver*' --inProcess</c>.
/// </summary>
[BenchmarkCategory(CudaDevice.Category)]
[WarmupCount(1)]
[IterationCount(3)]
public class DeviceVsCpuSolverBenchmarks
{
    private SolverCase _device = null!, _cpu = null!;

    [Params("svd 768x768", "svd 3072x768", "eigh 768", "cholesky 768 3072")]
    public string Case { get; set; } = "svd 768x768";

    [GlobalSetup]
    public void Setup()
    {
        var cpu = new CpuBackend();
        Console.WriteLine($"cpu backend: {cpu.Name}, {cpu.LinearAlgebra.Description}");
        _cpu = new SolverCase(cpu, Case);
        _device = new SolverCase(CudaDevice.Backend, Case);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cpu.Dispose();
        _device.Dispose();
    }

    [Benchmark(Baseline = true, Description = "CPU backend")]
    public void Cpu() => _cpu.Run();

    [Benchmark(Description = "device")]
    public void Device() => _device.Run();
}

/// <summary>
/// The two cuSOLVER SVD algorithms on the column-major float64 matrix the backend hands over (p×q, p ≥ q):
/// Jacobi <c>Dgesvdj</c> (economy, what the backend uses) and QR-iteration <c>Dgesvd</c> (jobu = jobvt = 'S').
/// Both destroy their input, so each invocation restores it with a device copy first (same cost in both).
/// Prints gesvdj's sweeps and residual once. Run: <c>TaskMerge.Bench --filter '*CusolverSvd*' --inProcess</c>.
/// </summary>
[BenchmarkCategory(CudaDevice.Category)]
[WarmupCount(1)]
[IterationCount(5)]
public class CusolverSvdBenchmarks
{
    private CudaAccelerator _accelerator = null!;
    private IntPtr _handle, _gesvdjInfo;
    private MemoryBuffer1D<double, Stride1D.Dense> _pristine = null!, _a = null!, _s = null!, _u = null!, _v = null!, _work = null!, _rwork = null!;
    private MemoryBuffer1D<int, Stride1D.Dense> _info = null!;
    private int _p, _q, _lworkJ, _lworkQr;

    [Params("768x768", "3072x768")]
    public string Shape { get; set; } = "768x768";

    [GlobalSetup]
    public void Setup()
    {
        var be = CudaDevice.Backend;
        _accelerator = (CudaAccelerator)be.Accelerator;
        if (!CudaLibraries.TryLoadCusolver(out string detail)) throw new InvalidOperationException(detail);
        var d = Shape.Split('x').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        (_p, _q) = (d[0], d[1]);
        _accelerator.Bind();
        Check(Cusolver.cusolverDnCreate(out _handle), nameof(Cusolver.cusolverDnCreate));
        Check(Cusolver.cusolverDnSetStream(_handle, ((CudaStream)_accelerator.DefaultStream).StreamPtr), nameof(Cusolver.cusolverDnSetStream));
        Check(Cusolver.cusolverDnCreateGesvdjInfo(out _gesvdjInfo), nameof(Cusolver.cusolverDnCreateGesvdjInfo));
        var rng = new Random(7);
        _pristine = _accelerator.Allocate1D(Enumerable.Range(0, _p * _q).Select(_ => rng.NextDouble() - 0.5).ToArray());
        _a = _accelerator.Allocate1D<double>((long)_p * _q);
        _s = _accelerator.Allocate1D<double>(_q);
        _u = _accelerator.Allocate1D<double>((long)_p * _q);
        _v = _accelerator.Allocate1D<double>((long)_q * _q);
        _rwork = _accelerator.Allocate1D<double>(_q);
        _info = _accelerator.Allocate1D<int>(1);
        Check(Cusolver.cusolverDnDgesvdj_bufferSize(_handle, CusolverEigMode.Vector, 1, _p, _q, _a.NativePtr, _p, _s.NativePtr, _u.NativePtr, _p,
            _v.NativePtr, _q, out _lworkJ, _gesvdjInfo), nameof(Cusolver.cusolverDnDgesvdj_bufferSize));
        Check(Cusolver.cusolverDnDgesvd_bufferSize(_handle, _p, _q, out _lworkQr), nameof(Cusolver.cusolverDnDgesvd_bufferSize));
        _work = _accelerator.Allocate1D<double>(Math.Max(1, Math.Max(_lworkJ, _lworkQr)));
        Gesvdj();
        Check(Cusolver.cusolverDnXgesvdjGetSweeps(_handle, _gesvdjInfo, out int sweeps), nameof(Cusolver.cusolverDnXgesvdjGetSweeps));
        Check(Cusolver.cusolverDnXgesvdjGetResidual(_handle, _gesvdjInfo, out double residual), nameof(Cusolver.cusolverDnXgesvdjGetResidual));
        Console.WriteLine($"gesvdj {_p}x{_q}: {sweeps} sweeps, residual {residual:E2}, devInfo {_info.GetAsArray1D()[0]}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _accelerator.Bind();
        Cusolver.cusolverDnDestroyGesvdjInfo(_gesvdjInfo);
        Cusolver.cusolverDnDestroy(_handle);
        foreach (var b in new MemoryBuffer[] { _pristine, _a, _s, _u, _v, _work, _rwork, _info }) b.Dispose();
    }

    [Benchmark(Baseline = true, Description = "Dgesvdj (econ)")]
    public void Gesvdj()
    {
        _pristine.AsArrayView<double>(0, _pristine.Length).CopyTo(_a.AsArrayView<double>(0, _a.Length));
        Check(Cusolver.cusolverDnDgesvdj(_handle, CusolverEigMode.Vector, 1, _p, _q, _a.NativePtr, _p, _s.NativePtr, _u.NativePtr, _p,
            _v.NativePtr, _q, _work.NativePtr, _lworkJ, _info.NativePtr, _gesvdjInfo), nameof(Cusolver.cusolverDnDgesvdj));
        _accelerator.Synchronize();
    }

    [Benchmark(Description = "Dgesvd (jobu = jobvt = 'S')")]
    public void Gesvd()
    {
        _pristine.AsArrayView<double>(0, _pristine.Length).CopyTo(_a.AsArrayView<double>(0, _a.Length));
        Check(Cusolver.cusolverDnDgesvd(_handle, (sbyte)'S', (sbyte)'S', _p, _q, _a.NativePtr, _p, _s.NativePtr, _u.NativePtr, _p,
            _v.NativePtr, _q, _work.NativePtr, _lworkQr, _rwork.NativePtr, _info.NativePtr), nameof(Cusolver.cusolverDnDgesvd));
        _accelerator.Synchronize();
    }

    private static void Check(int status, string call) => CudaStatus.CheckCusolver(status, call);
}
