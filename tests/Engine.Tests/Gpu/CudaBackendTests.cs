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
        foreach (var (library, detail) in CudaLibraries.Describe()) output.WriteLine($"{library}: {detail}");
        output.WriteLine($"kernels loaded at creation: {gpu.Diagnostics.LoadedKernels.Count}");
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

    /// <summary>
    /// m ≠ n ≠ k, all odd and none a multiple of a tile, every transpose, on cuBLAS and on the tiled kernel.
    /// Tolerance 1e-5 of max(|C_ij|, 1): the CPU sums the k ≤ 1025 float32 products in order, the device in
    /// another order and with FMA contraction (cuBLAS blocking/split-k), so entries differ by a rounding
    /// random walk of about √k·2⁻²⁴ ≈ 2·10⁻⁶ of the terms' magnitude, a fifth of the tolerance.
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void GemmOfOddUnequalShapesMatchesCpu(bool transA, bool transB)
    {
        var gpu = fixture.Require();
        foreach (bool kernel in new[] { false, true })
        {
            gpu.Diagnostics.ForceKernelMatrixOps = kernel;
            try
            {
                AssertGemm(gpu, _cpu, 517, 263, 1025, transA, transB, 1f, 0f, 1e-5, 27);
                AssertGemm(gpu, _cpu, 33, 1001, 7, transA, transB, -0.5f, 1.5f, 1e-5, 28);
            }
            finally
            {
                gpu.Diagnostics.ForceKernelMatrixOps = false;
            }
        }
    }

    [Fact]
    public void TiledGemmKernelMatchesCpuOnTheGpu()
    {
        var gpu = fixture.Require();
        gpu.Diagnostics.ForceKernelMatrixOps = true;
        try
        {
            AssertGemm(gpu, _cpu, 300, 200, 170, false, true, 1f, 0.5f, 1e-5, 22);
            AssertGemm(gpu, _cpu, 300, 200, 170, true, false, 1f, 0f, 1e-5, 23);
            AssertSyrk(gpu, _cpu, 200, 300, true, 1f, 0f, 1e-5, 24);
            AssertGemv(gpu, _cpu, 300, 200, true, 1f, 0.5f, 1e-5, 25);
        }
        finally
        {
            gpu.Diagnostics.ForceKernelMatrixOps = false;
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
        long pinnedBefore = gpu.Diagnostics.Staging.PinnedUploads;
        var sw = Stopwatch.StartNew();
        var checks = StageOnALoaderThread(gpu, tensors, i => sources[i % 4], [rows, cols], t =>
        {
            for (int k = 0; k < 20; k++) gpu.Gemm(t, false, w, false, product);
        });
        output.WriteLine($"{tensors} staged uploads of {rows}x{cols} with 20 GEMMs each: {sw.Elapsed.TotalMilliseconds:F0} ms; " +
            $"pinned {gpu.Diagnostics.Staging.PinnedUploads - pinnedBefore}, plain {gpu.Diagnostics.Staging.PlainUploads}, {gpu.Diagnostics.Staging.PinnedBytes >> 20} MiB pinned, {gpu.Diagnostics.Staging.Unavailable ?? "pinned staging on"}");
        Assert.Null(gpu.Diagnostics.Staging.Unavailable);
        Assert.Equal(tensors, gpu.Diagnostics.Staging.PinnedUploads - pinnedBefore);
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

    /// <summary>
    /// Attention's shapes (QKᵀ: 50×50 over k = 64 per head, batch 128·12) and odd ones with m ≠ n ≠ k.
    /// Tolerance 1e-5 of max(|C_ij|, 1): k ≤ 64 float32 products, summed in another order and with FMA
    /// contraction on the device, differ by a few ulps of the terms (≈ √64·2⁻²⁴ ≈ 5·10⁻⁷).
    /// </summary>
    [Theory]
    [InlineData(false, false, 1536, 50, 64, 50)]
    [InlineData(false, true, 1536, 50, 50, 64)]
    [InlineData(true, false, 1536, 50, 64, 50)]
    [InlineData(true, true, 1536, 50, 64, 50)]
    [InlineData(false, false, 7, 37, 19, 53)]
    [InlineData(true, true, 7, 37, 19, 53)]
    [InlineData(false, true, 9, 21, 45, 11)]
    public void GemmStridedBatchedOfAttentionAndOddShapesMatchesCpu(bool transA, bool transB, int batch, int m, int n, int k)
    {
        var gpu = fixture.Require();
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
            gpu.Diagnostics.ForceKernelMatrixOps = kernel;
            try
            {
                using var dc = Load(gpu, c0, batch, m, n);
                gpu.GemmStridedBatched(da, transA, db, transB, dc, 0.125f, 0.5f);
                AssertClose(expected, dc.ToArray(), 1e-5, kernel ? "batched gemm (ILGPU kernel)" : "batched gemm (cuBLAS)", 1.0);
            }
            finally
            {
                gpu.Diagnostics.ForceKernelMatrixOps = false;
            }
        }
    }

    /// <summary>
    /// The float64 cuSOLVER routines production runs (Dsyevd, Dgesvdj, Dpotrf + Dpotrs, through the backend's
    /// ops) on the tridiagonal (−1, 2, −1) matrix of odd order, whose eigenvalues 2 − 2cos(jπ/(n+1)) are
    /// known in closed form, so the reference is analytic rather than the CPU backend. Tolerances: the
    /// factorisation is float64 but input and output are float32, so the bound is a few float32 ulps of
    /// the largest eigenvalue (≈ 4): 1e-5 absolute; the solve's residual is bounded by cond(T) ≈ 0.4·n²
    /// times float32 rounding of x, 1e-3 relative.
    /// </summary>
    [Fact]
    public void CusolverFloat64RoutinesReproduceAKnownSpectrumAndSolve()
    {
        var gpu = fixture.Require();
        if (!gpu.LinearAlgebraEngine.StartsWith("cuSOLVER", StringComparison.Ordinal)) Assert.Skip(gpu.LinearAlgebraEngine);
        const int n = 45;
        var t = new float[n * n];
        for (int i = 0; i < n; i++)
        {
            t[i * n + i] = 2f;
            if (i > 0) t[i * n + i - 1] = t[(i - 1) * n + i] = -1f;
        }
        double[] eigen = Enumerable.Range(1, n).Select(j => 2 - 2 * Math.Cos(j * Math.PI / (n + 1))).ToArray();

        using var a = Load(gpu, t, n, n);
        using var w = gpu.Empty(n);
        using var vectors = gpu.Empty(n, n);
        gpu.SymmetricEigen(a, w, vectors);
        AssertClose(eigen.Select(e => (float)e).ToArray(), w.ToArray(), 1e-5, "Dsyevd eigenvalues", 1.0);

        using var u = gpu.Empty(n, n);
        using var s = gpu.Empty(n);
        using var vt = gpu.Empty(n, n);
        gpu.Svd(a, u, s, vt);
        AssertClose(eigen.Reverse().Select(e => (float)e).ToArray(), s.ToArray(), 1e-5, "Dgesvdj singular values", 1.0);

        const int rows = 7;
        float[] rhs = RandomValues(rows * n, 50);
        using var b = Load(gpu, rhs, rows, n);
        Assert.True(gpu.CholeskySolve(a, 0, b));
        float[] x = b.ToArray();
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < n; i++)
            {
                double residual = 2.0 * x[r * n + i] - (i > 0 ? x[r * n + i - 1] : 0) - (i < n - 1 ? x[r * n + i + 1] : 0);
                Assert.Equal(rhs[r * n + i], residual, 1e-3);
            }
    }
}
