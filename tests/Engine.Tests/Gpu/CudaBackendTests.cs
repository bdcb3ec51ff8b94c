using System.Diagnostics;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Native;
using TaskMerge.Engine.Optim;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tensors.Ilgpu;
using Xunit;
using TaskMerge.Engine.Tests.Cli;
using TaskMerge.Engine.Tests.Kernels;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Gpu;

/// <summary>The CUDA backend on device 0, or why there is none.</summary>
public sealed class CudaFixture : IDisposable
{
    public CudaFixture() => Device = IlgpuBackend.TryCreateCuda(out _reason);

    private readonly string _reason;

    public IlgpuBackend? Device { get; }

    public CpuBackend Cpu { get; } = new();

    /// <summary>The backend, or a skip of the calling test naming the reason.</summary>
    public IlgpuBackend Require()
    {
        if (Device is null) Assert.Skip($"CUDA backend unavailable: {_reason}");
        return Device;
    }

    public void Dispose() => Device?.Dispose();
}

/// <summary>
/// The op set on a real GPU at realistic sizes against the CPU backend. Skipped, with the reason,
/// where <see cref="IlgpuBackend.TryCreateCuda"/> finds no usable device.
/// </summary>
public sealed class CudaBackendTests(CudaFixture fixture, ITestOutputHelper output) : IClassFixture<CudaFixture>
{
    private const int Elements = 4 << 20;
    private readonly CpuBackend _cpu = fixture.Cpu;

    [Fact]
    public void NamesTheDeviceAndTheMatrixEngine()
    {
        var gpu = fixture.Require();
        output.WriteLine($"{gpu.Name}; matrix ops: {gpu.MatrixEngine}; factorisations: {gpu.LinearAlgebraEngine}");
        Assert.Matches(@"^cuda:0 \(.+, [0-9.]+ GiB\)$", gpu.Name);
    }

    [Fact]
    public void FactorisationsRunOnCusolverInFloat64()
    {
        var gpu = fixture.Require();
        Assert.True(gpu.LinearAlgebraEngine.StartsWith("cuSOLVER (", StringComparison.Ordinal), gpu.LinearAlgebraEngine);
        Assert.EndsWith("float64", gpu.LinearAlgebraEngine);
    }

    [Theory]
    [InlineData(768, 768)]
    [InlineData(3072, 768)]
    [InlineData(768, 3072)]
    [InlineData(50, 768)]
    public void SvdOfVitShapesMatchesCpu(int m, int n)
    {
        var gpu = fixture.Require();
        var a = Decompositions.Gaussian(m, n, m + n);
        var cpu = Decompositions.Svd(_cpu, a, m, n);
        var sw = Stopwatch.StartNew();
        var device = Decompositions.Svd(gpu, a, m, n);
        output.WriteLine($"svd {m}x{n} on {gpu.LinearAlgebraEngine}: {sw.Elapsed.TotalMilliseconds:F1} ms (first call includes compilation)");
        Decompositions.AssertSvdMatches(cpu, device, a, m, n, 1e-5);
    }

    [Theory]
    [InlineData(768)]
    [InlineData(3072)]
    public void SymmetricEigenMatchesCpu(int n)
    {
        var gpu = fixture.Require();
        var a = Decompositions.Symmetric(n, n);
        var cpu = Decompositions.Eigen(_cpu, a, n);
        var sw = Stopwatch.StartNew();
        var device = Decompositions.Eigen(gpu, a, n);
        output.WriteLine($"syevd {n}: {sw.Elapsed.TotalMilliseconds:F1} ms");
        Decompositions.AssertEigenMatches(cpu, device, n, 1e-5);
    }

    [Fact]
    public void CholeskySolveOf768With3072RowsMatchesCpu()
    {
        var gpu = fixture.Require();
        const int n = 768, rows = 3072;
        var a = Decompositions.Spd(n, 1024, 1e-3, 60);
        var b = RandomValues(rows * n, 61);
        var (cpuSolved, expected) = Decompositions.CholeskySolve(_cpu, a, n, 1e-4, b, rows);
        var (gpuSolved, actual) = Decompositions.CholeskySolve(gpu, a, n, 1e-4, b, rows);
        Assert.True(cpuSolved && gpuSolved);
        AssertClose(expected, actual, 1e-4, "B·(A + ρI)⁻¹", floor: expected.Max(MathF.Abs));

        var indefinite = (float[])a.Clone();
        indefinite[5 * n + 5] = -1f;
        var (solved, unchanged) = Decompositions.CholeskySolve(gpu, indefinite, n, 0, b, rows);
        Assert.False(solved);
        Assert.Equal(b, unchanged);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WudiOnTheGpuMatchesCpuWithLossLoggedAsScalars(bool closedForm)
    {
        var gpu = fixture.Require();
        const int rows = 3072, cols = 768, tasks = 4;
        var taus = Enumerable.Range(0, tasks).Select(i => RandomValues(rows * cols, 70 + i, 1e-3f)).ToArray();
        var settings = new WudiMethod.Settings(closedForm ? 0 : 50, 1e-5f, closedForm, 1e-4, 1.0, LogLoss: true, LogEvery: 10);
        (float[] Tau, Dictionary<string, object> Diagnostics) Solve(IBackend be)
        {
            var diagnostics = new Dictionary<string, object>();
            var m = WudiMethod.SolveTaskVector(be, [rows], cols, Enumerable.Range(0, tasks).ToArray(),
                i => [Load(be, taus[i], rows, cols)], settings, "fc1", diagnostics);
            return (be.DetachToHost(m[0]), diagnostics);
        }
        var cpu = Solve(_cpu);
        var sw = Stopwatch.StartNew();
        var device = Solve(gpu);
        output.WriteLine($"wudi {(closedForm ? "closed form" : "50 Adam steps")} [{rows},{cols}] × {tasks}: {sw.Elapsed.TotalMilliseconds:F0} ms");
        AssertClose(cpu.Tau, device.Tau, closedForm ? 1e-3 : 1e-4, "τ_m", floor: cpu.Tau.Max(MathF.Abs));
        foreach (string key in closedForm ? new[] { "loss_initial", "loss_final" } : ["loss"])
        {
            var expected = closedForm ? [(double)cpu.Diagnostics[key]] : ((List<double>)cpu.Diagnostics[key]).ToArray();
            var actual = closedForm ? [(double)device.Diagnostics[key]] : ((List<double>)device.Diagnostics[key]).ToArray();
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 * Math.Abs(expected[i]), $"{key}[{i}]: cpu {expected[i]}, gpu {actual[i]}");
        }
    }

    [Fact]
    public void ElementwiseOpsOn4MElementsMatchCpu()
    {
        var gpu = fixture.Require();
        float[] a = RandomValues(Elements, 1), b = RandomValues(Elements, 2);
        foreach (var (name, op) in new (string, Action<IBackend, Tensor[]>)[]
        {
            ("add", (be, t) => be.Add(t[0], t[1], t[2])), ("sub", (be, t) => be.Sub(t[0], t[1], t[2])),
            ("mul", (be, t) => be.Mul(t[0], t[1], t[2])), ("div", (be, t) => be.Div(t[0], t[1], t[2])),
            ("scale", (be, t) => be.Scale(t[0], -1.5f, t[2])), ("fill", (be, t) => be.Fill(t[2], 3.25f)),
            ("copy", (be, t) => be.Copy(t[1], t[2])),
        })
        {
            var (e, d) = Run(gpu, _cpu, [a, b, new float[Elements]], op, 2);
            AssertBitEqual(e, d, name);
        }
        // The device compiler may contract x·alpha + y into one FMA (one rounding instead of two).
        var (ey, dy) = Run(gpu, _cpu, [a, b], (be, t) => be.Axpy(0.3f, t[0], t[1]), 1);
        AssertClose(ey, dy, 1e-6, "axpy");
    }

    [Fact]
    public void ReductionsOn16MElementsMatchCpu()
    {
        var gpu = fixture.Require();
        AssertReductions(gpu, _cpu, RandomValues(16 << 20, 3, scale: 10f), RandomValues(16 << 20, 4), 1e-6);
    }

    [Fact]
    public void TopKOn16MElementsMatchesCpu()
    {
        var gpu = fixture.Require();
        var sw = Stopwatch.StartNew();
        AssertTopK(gpu, _cpu, RandomValues(16 << 20, 5), (16 << 20) / 10);
        AssertTopK(gpu, _cpu, TiedValues(16 << 20, 6, distinct: 5), (16 << 20) / 3);
        output.WriteLine($"two 16M top-k parity runs: {sw.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public void RandomDrawsOn4MElementsMatchCpu()
    {
        var gpu = fixture.Require();
        ulong stream = CounterRng.StreamId("model.layers.0.mlp.weight", 2);
        var (e, d) = Run(gpu, _cpu, [RandomValues(Elements, 7)], (be, t) => be.BernoulliKeep(t[0], 0.3f, 1234, stream), 0);
        AssertBitEqual(e, d, "bernoulli");
        (e, d) = Run(gpu, _cpu, [new float[Elements]], (be, t) => be.FillNormal(t[0], 1234, stream), 0);
        AssertClose(e, d, 1e-6, "normal");
    }

    [Theory]
    [InlineData(new[] { 3072, 768 }, 768, 1)]
    [InlineData(new[] { 768, 3, 32, 32 }, 3, 1024)]
    public void RankedBernoulliKeepAtVitShapesMatchesCpu(int[] shape, int line, int inner)
    {
        var gpu = fixture.Require();
        int n = shape.Aggregate(1, (a, b) => a * b);
        var values = RandomValues(n, 8).Select(v => MathF.Round(v * 64) / 64).ToArray();
        var sw = Stopwatch.StartNew();
        var (e, d) = Run(gpu, _cpu, [values], [shape],
            (be, t) => be.RankedBernoulliKeep(t[0], line, inner, 0.35, 0.65, 99, CounterRng.StreamId("visual.proj", 1)), 0);
        AssertBitEqual(e, d, "ranked bernoulli");
        output.WriteLine($"ranked keep [{string.Join(", ", shape)}] parity run: {sw.Elapsed.TotalSeconds:F1} s");
    }

    [Theory]
    [InlineData(3)]
    [InlineData(11)]
    public void SignConsensusOn1MElementsMatchesCpu(int experts)
    {
        var gpu = fixture.Require();
        var weighted = Enumerable.Range(0, experts)
            .Select(k => k % 2 == 0 ? RandomValues(1 << 20, 10 + k, 1e-2f) : TiedValues(1 << 20, 10 + k, 3)).ToArray();
        AssertSignConsensus(gpu, _cpu, weighted, Enumerable.Range(0, experts).Select(k => 0.5f + 0.1f * k).ToArray());
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void GemmOf1024x768x768MatchesCpu(bool transA, bool transB)
    {
        var gpu = fixture.Require();
        AssertGemm(gpu, _cpu, 1024, 768, 768, transA, transB, 1f, 0f, 1e-5, 20);
        AssertGemm(gpu, _cpu, 1024, 768, 768, transA, transB, 0.5f, 2f, 1e-5, 21);
    }

    [Fact]
    public void TiledGemmKernelMatchesCpuOnTheGpu()
    {
        var gpu = fixture.Require();
        gpu.ForceKernelMatrixOps = true;
        try
        {
            AssertGemm(gpu, _cpu, 300, 200, 170, false, true, 1f, 0.5f, 1e-5, 22);
            AssertGemm(gpu, _cpu, 300, 200, 170, true, false, 1f, 0f, 1e-5, 23);
            AssertSyrk(gpu, _cpu, 200, 300, true, 1f, 0f, 1e-5, 24);
            AssertGemv(gpu, _cpu, 300, 200, true, 1f, 0.5f, 1e-5, 25);
        }
        finally
        {
            gpu.ForceKernelMatrixOps = false;
        }
    }

    [Theory]
    [InlineData(false, 0f)]
    [InlineData(true, 0f)]
    [InlineData(true, 1f)]
    public void SyrkOf768x1024MatchesCpu(bool transA, float beta)
    {
        var gpu = fixture.Require();
        AssertSyrk(gpu, _cpu, 768, 1024, transA, 0.5f, beta, 1e-5, 26);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GemvOf1024x768MatchesCpu(bool transA)
    {
        var gpu = fixture.Require();
        AssertGemv(gpu, _cpu, 1024, 768, transA, 1f, 0f, 1e-5, 27);
        AssertGemv(gpu, _cpu, 1024, 768, transA, 2f, -1f, 1e-5, 28);
    }

    [Fact]
    public void AdamKernelOn1MElementsMatchesAdamStep()
    {
        var gpu = fixture.Require();
        const int n = 1 << 20;
        float[] p = RandomValues(n, 30), m = new float[n], v = new float[n];
        using var dp = Load(gpu, p);
        using var dg = gpu.Empty(n);
        using var dm = gpu.Zeros(n);
        using var dv = gpu.Zeros(n);
        for (int step = 1; step <= 10; step++)
        {
            float[] g = RandomValues(n, 31 + step, 0.1f);
            gpu.Upload(g, dg);
            gpu.AdamStep(dp, dg, dm, dv, step, new AdamSettings(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f));
            AdamStep.Apply(p, g, m, v, step, new AdamSettings(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f));
        }
        AssertClose(p, dp.ToArray(), 1e-6, "p");
        AssertClose(m, dm.ToArray(), 1e-5, "m", floor: 1e-6);
        AssertClose(v, dv.ToArray(), 1e-5, "v", floor: 1e-9);
    }

    [Fact]
    public void StagedUploadsArriveIntactWhileKernelsRun()
    {
        var gpu = fixture.Require();
        const int tensors = 24, rows = 3072, cols = 768;
        var sources = Enumerable.Range(0, 4).Select(i => RandomValues(rows * cols, 80 + i)).ToArray();
        using var w = Load(gpu, RandomValues(cols * cols, 90), cols, cols);
        using var product = gpu.Empty(rows, cols);
        long pinnedBefore = gpu.Staging.PinnedUploads;
        var sw = Stopwatch.StartNew();
        var checks = StageOnALoaderThread(gpu, tensors, i => sources[i % 4], [rows, cols], t =>
        {
            for (int k = 0; k < 20; k++) gpu.Gemm(t, false, w, false, product);
        });
        output.WriteLine($"{tensors} staged uploads of {rows}x{cols} with 20 GEMMs each: {sw.Elapsed.TotalMilliseconds:F0} ms; " +
            $"pinned {gpu.Staging.PinnedUploads - pinnedBefore}, plain {gpu.Staging.PlainUploads}, {gpu.Staging.PinnedBytes >> 20} MiB pinned, {gpu.Staging.Unavailable ?? "pinned staging on"}");
        Assert.Null(gpu.Staging.Unavailable);
        Assert.Equal(tensors, gpu.Staging.PinnedUploads - pinnedBefore);
        foreach (var (i, values) in checks) AssertBitEqual(sources[i % 4], values, $"staged tensor {i}");
    }

    /// <summary>
    /// A loader thread stages <paramref name="count"/> tensors while this thread takes each and runs
    /// <paramref name="work"/> on it, as the merge pipeline does; returns every fifth tensor's values as taken.
    /// </summary>
    private static List<(int Index, float[] Values)> StageOnALoaderThread(IlgpuBackend gpu, int count, Func<int, float[]> source, int[] shape, Action<Tensor> work)
    {
        using var staged = new System.Collections.Concurrent.BlockingCollection<(int, StagedTensor)>(boundedCapacity: 4);
        var loader = new Thread(() =>
        {
            for (int i = 0; i < count; i++)
            {
                var values = source(i);
                staged.Add((i, gpu.Stage(shape, v => values.CopyTo(v))));
            }
            staged.CompleteAdding();
        });
        loader.Start();
        var taken = new List<(int, float[])>();
        foreach (var (i, s) in staged.GetConsumingEnumerable())
        {
            using var t = s.Take();
            work(t);
            if (i % 5 == 0) taken.Add((i, t.ToArray()));
        }
        loader.Join();
        return taken;
    }

    [Theory]
    [InlineData("ties")]
    [InlineData("task_arithmetic")]
    [InlineData("dare_ties")]
    [InlineData("wudi")]
    [InlineData("tsv_m")]
    [InlineData("iso_c")]
    [InlineData("iso_cts")]
    [InlineData("awd")]
    public void ExampleMergeOnTheGpuMatchesCpu(string method)
    {
        fixture.Require();
        string config = Path.Combine(TestPaths.Examples, method + ".yml"), dir = TestPaths.NewTempDir();
        var sw = Stopwatch.StartNew();
        var (code, _, stderr) = CliRunner.Run("merge", config, Path.Combine(dir, "gpu"), "--device", "cuda", "--quiet");
        Assert.True(code == 0, stderr);
        output.WriteLine($"{method} on the GPU: {sw.Elapsed.TotalSeconds:F1} s (with compilation)");
        (code, _, stderr) = CliRunner.Run("merge", config, Path.Combine(dir, "cpu"), "--device", "cpu", "--quiet");
        Assert.True(code == 0, stderr);
        Assert.Contains("\"cuda:0", File.ReadAllText(Path.Combine(dir, "gpu", "merge_report.json")));
        using var cpu = ModelSource.Open(Path.Combine(dir, "cpu"));
        using var gpuOut = ModelSource.Open(Path.Combine(dir, "gpu"));
        foreach (var t in cpu.Tensors)
        {
            var expected = cpu.ReadFloat32(t.Name);
            AssertClose(expected, gpuOut.ReadFloat32(t.Name), 1e-4, $"{method} {t.Name}", floor: Math.Max(1e-6f, expected.Max(MathF.Abs)));
        }
    }

    [Fact]
    public void PoolReusesBuffersAtRealSizes()
    {
        var gpu = fixture.Require();
        gpu.TrimPool();
        gpu.Empty(768, 3072).Dispose();
        Assert.True(gpu.CachedBytes >= 768L * 3072 * sizeof(float));
        using var again = gpu.Empty(3072, 768);
        Assert.Equal(0, gpu.CachedBytes);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void GemmStridedBatchedOfAttentionShapesMatchesCpu(bool transA, bool transB)
    {
        var gpu = fixture.Require();
        const int batch = 128 * 12, m = 50, n = 64, k = 50;
        int[] aShape = transA ? [batch, k, m] : [batch, m, k], bShape = transB ? [batch, n, k] : [batch, k, n];
        float[] a = RandomValues(batch * m * k, 60), b = RandomValues(batch * k * n, 61), c0 = RandomValues(batch * m * n, 62);
        using var ca = _cpu.Wrap((float[])a.Clone(), aShape);
        using var cb = _cpu.Wrap((float[])b.Clone(), bShape);
        using var cc = _cpu.Wrap((float[])c0.Clone(), batch, m, n);
        _cpu.GemmStridedBatched(ca, transA, cb, transB, cc, 0.125f, 0.5f);
        float[] expected = cc.ToArray();
        using var da = Load(gpu, a, aShape);
        using var db = Load(gpu, b, bShape);
        foreach (bool kernel in new[] { false, true })
        {
            gpu.ForceKernelMatrixOps = kernel;
            try
            {
                using var dc = Load(gpu, c0, batch, m, n);
                gpu.GemmStridedBatched(da, transA, db, transB, dc, 0.125f, 0.5f);
                AssertClose(expected, dc.ToArray(), 1e-5, kernel ? "batched gemm (ILGPU kernel)" : "batched gemm (cuBLAS)", 1.0);
            }
            finally
            {
                gpu.ForceKernelMatrixOps = false;
            }
        }
    }

    [Fact]
    public void CublasGemmExAndStridedBatchedMatchCpu()
    {
        var gpu = fixture.Require();
        var cublas = gpu.Cublas;
        if (cublas is null) Assert.Skip($"cuBLAS unavailable: {gpu.MatrixEngine}");
        const int m = 64, n = 48, k = 32, batch = 3;
        float[] a = RandomValues(batch * m * k, 40), b = RandomValues(batch * k * n, 41);
        using var da = Load(gpu, a, batch, m, k);
        using var db = Load(gpu, b, batch, k, n);
        using var dc = gpu.Zeros(batch, m, n);
        float one = 1f, zero = 0f;

        // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: B first, dimensions (n, m, k).
        CudaStatus.CheckCublas(Cublas.cublasGemmEx(cublas.Handle, CublasOperation.N, CublasOperation.N, n, m, k, one,
            gpu.DevicePointer(db), CudaDataType.R32F, n, gpu.DevicePointer(da), CudaDataType.R32F, k, zero,
            gpu.DevicePointer(dc), CudaDataType.R32F, n, CublasComputeType.Compute32F, Cublas.GemmDefault), nameof(Cublas.cublasGemmEx));
        float[] c = dc.ToArray();
        AssertClose(CpuProduct(a, b, 0), c[..(m * n)], 1e-5, "gemmEx", 1.0);

        CudaStatus.CheckCublas(Cublas.cublasSgemmStridedBatched(cublas.Handle, CublasOperation.N, CublasOperation.N, n, m, k, one,
            gpu.DevicePointer(db), n, (long)k * n, gpu.DevicePointer(da), k, (long)m * k, zero,
            gpu.DevicePointer(dc), n, (long)m * n, batch), nameof(Cublas.cublasSgemmStridedBatched));
        c = dc.ToArray();
        for (int i = 0; i < batch; i++)
            AssertClose(CpuProduct(a, b, i), c[(i * m * n)..((i + 1) * m * n)], 1e-5, $"strided batch {i}", 1.0);

        float[] CpuProduct(float[] aa, float[] bb, int i)
        {
            using var ta = _cpu.Wrap(aa[(i * m * k)..((i + 1) * m * k)], m, k);
            using var tb = _cpu.Wrap(bb[(i * k * n)..((i + 1) * k * n)], k, n);
            using var tc = _cpu.Zeros(m, n);
            _cpu.Gemm(ta, false, tb, false, tc);
            return tc.ToArray();
        }
    }

    [Fact]
    public void CusolverFactorsSolvesAndDecomposesKnownMatrices()
    {
        var gpu = fixture.Require();
        if (!CudaLibraries.TryLoadCusolver(out string detail)) Assert.Skip(detail);
        var accelerator = (CudaAccelerator)gpu.Accelerator;
        accelerator.Bind();
        CudaStatus.CheckCusolver(Cusolver.cusolverDnCreate(out IntPtr handle), nameof(Cusolver.cusolverDnCreate));
        try
        {
            CudaStatus.CheckCusolver(Cusolver.cusolverDnSetStream(handle, ((CudaStream)accelerator.DefaultStream).StreamPtr),
                nameof(Cusolver.cusolverDnSetStream));
            const int n = 32;
            // Tridiagonal (−1, 2, −1): eigenvalues 2 − 2cos(jπ/(n+1)), j = 1..n; symmetric positive definite.
            var t = new float[n * n];
            for (int i = 0; i < n; i++)
            {
                t[i * n + i] = 2f;
                if (i > 0) t[i * n + i - 1] = t[(i - 1) * n + i] = -1f;
            }
            double[] eigen = Enumerable.Range(1, n).Select(j => 2 - 2 * Math.Cos(j * Math.PI / (n + 1))).ToArray();
            using var info = accelerator.Allocate1D<int>(1);

            // potrf + potrs: solve T·x = rhs.
            float[] rhs = RandomValues(n, 50);
            using var a = Load(gpu, t, n, n);
            using var bx = Load(gpu, rhs);
            CudaStatus.CheckCusolver(Cusolver.cusolverDnSpotrf_bufferSize(handle, CublasFillMode.Lower, n, gpu.DevicePointer(a), n, out int lwork),
                nameof(Cusolver.cusolverDnSpotrf_bufferSize));
            using (var work = gpu.Empty(Math.Max(lwork, 1)))
            {
                CudaStatus.CheckCusolver(Cusolver.cusolverDnSpotrf(handle, CublasFillMode.Lower, n, gpu.DevicePointer(a), n,
                    gpu.DevicePointer(work), lwork, info.NativePtr), nameof(Cusolver.cusolverDnSpotrf));
                CudaStatus.CheckCusolver(Cusolver.cusolverDnSpotrs(handle, CublasFillMode.Lower, n, 1, gpu.DevicePointer(a), n,
                    gpu.DevicePointer(bx), n, info.NativePtr), nameof(Cusolver.cusolverDnSpotrs));
            }
            Assert.Equal(0, info.GetAsArray1D()[0]);
            float[] x = bx.ToArray();
            for (int i = 0; i < n; i++)
            {
                double r = 2.0 * x[i] - (i > 0 ? x[i - 1] : 0) - (i < n - 1 ? x[i + 1] : 0);
                Assert.Equal(rhs[i], r, 1e-3);
            }

            // syevd: eigenvalues ascending.
            using var s = Load(gpu, t, n, n);
            using var w = gpu.Empty(n);
            CudaStatus.CheckCusolver(Cusolver.cusolverDnSsyevd_bufferSize(handle, CusolverEigMode.NoVector, CublasFillMode.Lower, n,
                gpu.DevicePointer(s), n, gpu.DevicePointer(w), out lwork), nameof(Cusolver.cusolverDnSsyevd_bufferSize));
            using (var work = gpu.Empty(Math.Max(lwork, 1)))
                CudaStatus.CheckCusolver(Cusolver.cusolverDnSsyevd(handle, CusolverEigMode.NoVector, CublasFillMode.Lower, n,
                    gpu.DevicePointer(s), n, gpu.DevicePointer(w), gpu.DevicePointer(work), lwork, info.NativePtr), nameof(Cusolver.cusolverDnSsyevd));
            Assert.Equal(0, info.GetAsArray1D()[0]);
            AssertClose(eigen.Select(e => (float)e).ToArray(), w.ToArray(), 1e-4, "syevd eigenvalues", 1.0);

            // gesvdj and gesvd: singular values (descending) of an SPD matrix are its eigenvalues.
            float[] singular = eigen.Reverse().Select(e => (float)e).ToArray();
            using var u = gpu.Empty(n, n);
            using var v = gpu.Empty(n, n);
            using var sv = gpu.Empty(n);
            CudaStatus.CheckCusolver(Cusolver.cusolverDnCreateGesvdjInfo(out IntPtr jInfo), nameof(Cusolver.cusolverDnCreateGesvdjInfo));
            try
            {
                using var j = Load(gpu, t, n, n);
                CudaStatus.CheckCusolver(Cusolver.cusolverDnSgesvdj_bufferSize(handle, CusolverEigMode.Vector, 0, n, n, gpu.DevicePointer(j), n,
                    gpu.DevicePointer(sv), gpu.DevicePointer(u), n, gpu.DevicePointer(v), n, out lwork, jInfo), nameof(Cusolver.cusolverDnSgesvdj_bufferSize));
                using var work = gpu.Empty(Math.Max(lwork, 1));
                CudaStatus.CheckCusolver(Cusolver.cusolverDnSgesvdj(handle, CusolverEigMode.Vector, 0, n, n, gpu.DevicePointer(j), n,
                    gpu.DevicePointer(sv), gpu.DevicePointer(u), n, gpu.DevicePointer(v), n, gpu.DevicePointer(work), lwork, info.NativePtr, jInfo),
                    nameof(Cusolver.cusolverDnSgesvdj));
            }
            finally
            {
                Cusolver.cusolverDnDestroyGesvdjInfo(jInfo);
            }
            Assert.Equal(0, info.GetAsArray1D()[0]);
            AssertClose(singular, sv.ToArray(), 1e-4, "gesvdj singular values", 1.0);

            using var g = Load(gpu, t, n, n);
            using var rwork = gpu.Empty(n);
            CudaStatus.CheckCusolver(Cusolver.cusolverDnSgesvd_bufferSize(handle, n, n, out lwork), nameof(Cusolver.cusolverDnSgesvd_bufferSize));
            using (var work = gpu.Empty(Math.Max(lwork, 1)))
                CudaStatus.CheckCusolver(Cusolver.cusolverDnSgesvd(handle, (sbyte)'N', (sbyte)'N', n, n, gpu.DevicePointer(g), n, gpu.DevicePointer(sv),
                    gpu.DevicePointer(u), n, gpu.DevicePointer(v), n, gpu.DevicePointer(work), lwork, gpu.DevicePointer(rwork), info.NativePtr),
                    nameof(Cusolver.cusolverDnSgesvd));
            Assert.Equal(0, info.GetAsArray1D()[0]);
            AssertClose(singular, sv.ToArray(), 1e-4, "gesvd singular values", 1.0);
        }
        finally
        {
            Cusolver.cusolverDnDestroy(handle);
        }
    }
}
