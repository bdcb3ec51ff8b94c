using TaskMerge.Engine.Native;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using static TaskMerge.Engine.Tests.Methods.SpectralReference;

namespace TaskMerge.Engine.Tests.Tensors;

/// <summary>
/// The CPU backend's SVD and symmetric eigensolver on both providers (native LAPACK and managed
/// MathNet): orthonormal factors, exact reconstruction, ordering, agreement with each other and
/// with known spectra, on tall, wide, square and rank-deficient inputs.
/// </summary>
public class SpectralLinearAlgebraTests
{
    private static CpuBackend Backend(string provider)
    {
        if (provider == "native")
            Assert.SkipUnless(CpuLinearAlgebra.NativeAvailable(out _), "no native LAPACK on this machine");
        return new CpuBackend(2, provider == "native" ? LapackProvider.Native : LapackProvider.Managed);
    }

    private static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>A random m×n matrix of the given rank (Gaussian factors), as float32.</summary>
    private static float[] RandomMatrix(Random r, int m, int n, int rank)
    {
        var a = new double[m, rank];
        var b = new double[rank, n];
        for (int i = 0; i < m; i++) for (int j = 0; j < rank; j++) a[i, j] = Gauss(r);
        for (int i = 0; i < rank; i++) for (int j = 0; j < n; j++) b[i, j] = Gauss(r);
        var c = MatMul(a, b);
        return Enumerable.Range(0, m * n).Select(i => (float)c[i / n, i % n]).ToArray();
    }

    private static (float[] U, float[] S, float[] Vt) Svd(CpuBackend cpu, float[] a, int m, int n)
    {
        int k = Math.Min(m, n);
        using var at = cpu.Wrap(a, m, n);
        using var u = cpu.Empty(m, k);
        using var s = cpu.Empty(k);
        using var vt = cpu.Empty(k, n);
        cpu.Svd(at, u, s, vt);
        return (u.ToArray(), s.ToArray(), vt.ToArray());
    }

    private static double[,] M(float[] v, int m, int n) => FromRowMajor(v.Select(x => (double)x).ToArray(), m, n);

    private static void AssertOrthonormalColumns(double[,] q, double tol)
    {
        var g = MatMul(Transpose(q), q);
        for (int i = 0; i < g.GetLength(0); i++)
            for (int j = 0; j < g.GetLength(1); j++)
                Assert.True(Math.Abs(g[i, j] - (i == j ? 1 : 0)) <= tol, $"QᵀQ[{i},{j}] = {g[i, j]:R}");
    }

    private static double FrobeniusDistance(double[,] a, double[,] b)
    {
        double d = 0;
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++) d += (a[i, j] - b[i, j]) * (a[i, j] - b[i, j]);
        return Math.Sqrt(d);
    }

    private static double Frobenius(double[,] a) => FrobeniusDistance(a, new double[a.GetLength(0), a.GetLength(1)]);

    public static TheoryData<string, int, int, int> SvdCases => new()
    {
        // provider, m, n, rank (= min(m,n) for full rank)
        { "native", 40, 24, 24 }, { "managed", 40, 24, 24 },
        { "native", 24, 40, 24 }, { "managed", 24, 40, 24 },
        { "native", 32, 32, 32 }, { "managed", 32, 32, 32 },
        { "native", 50, 30, 5 }, { "managed", 50, 30, 5 },
        { "native", 12, 36, 3 }, { "managed", 12, 36, 3 },
        { "native", 1, 9, 1 }, { "managed", 9, 1, 1 },
        { "native", 200, 120, 120 }, { "managed", 120, 200, 120 },
    };

    [Theory]
    [MemberData(nameof(SvdCases))]
    public void Svd_gives_orthonormal_factors_descending_values_and_reconstructs(string provider, int m, int n, int rank)
    {
        var cpu = Backend(provider);
        var a = RandomMatrix(new Random(m * 1000 + n), m, n, rank);
        var (u, s, vt) = Svd(cpu, a, m, n);
        int k = Math.Min(m, n);
        AssertOrthonormalColumns(M(u, m, k), 2e-6);
        AssertOrthonormalColumns(Transpose(M(vt, k, n)), 2e-6);
        Assert.True(s.All(x => x >= 0), "singular values are non-negative");
        Assert.True(s.Zip(s.Skip(1)).All(p => p.First >= p.Second), "singular values descend");
        var am = M(a, m, n);
        double err = FrobeniusDistance(MatMul(ScaleColumns(M(u, m, k), s.Select(x => (double)x).ToArray()), M(vt, k, n)), am) / Frobenius(am);
        Assert.True(err <= 1e-6, $"reconstruction error {err:E2}");
        for (int j = rank; j < k; j++) Assert.True(s[j] <= 1e-5 * s[0], $"s[{j}] = {s[j]} of a rank-{rank} matrix");
    }

    [Theory]
    [InlineData("native")]
    [InlineData("managed")]
    public void Svd_recovers_a_known_spectrum(string provider)
    {
        var cpu = Backend(provider);
        var r = new Random(3);
        const int m = 30, n = 18;
        var sigma = Enumerable.Range(0, n).Select(j => 10.0 * Math.Pow(0.7, j)).ToArray();
        var (q, _, _) = JacobiSvd(M(RandomMatrix(r, m, n, n), m, n));
        var (_, _, pt) = JacobiSvd(M(RandomMatrix(r, n, n, n), n, n));
        var a = MatMul(ScaleColumns(q, sigma), pt);
        var (_, s, _) = Svd(cpu, Enumerable.Range(0, m * n).Select(i => (float)a[i / n, i % n]).ToArray(), m, n);
        for (int j = 0; j < n; j++) Assert.True(Math.Abs(s[j] - sigma[j]) <= 1e-5 * sigma[0], $"s[{j}] = {s[j]}, expected {sigma[j]}");
    }

    [Theory]
    [InlineData(60, 25)]
    [InlineData(25, 60)]
    [InlineData(40, 40)]
    public void Native_and_managed_svd_agree_on_values_and_on_every_leading_subspace(int m, int n)
    {
        var native = Backend("native");
        var managed = Backend("managed");
        var r = new Random(m + n);
        // Well separated spectrum, so every leading subspace is well defined.
        int k = Math.Min(m, n);
        var (q, _, _) = JacobiSvd(M(RandomMatrix(r, m, k, k), m, k));
        var (p, _, _) = JacobiSvd(M(RandomMatrix(r, n, k, k), n, k));
        var a = MatMul(ScaleColumns(q, Enumerable.Range(0, k).Select(j => Math.Pow(0.85, j)).ToArray()), Transpose(p));
        var af = Enumerable.Range(0, m * n).Select(i => (float)a[i / n, i % n]).ToArray();
        var (u1, s1, vt1) = Svd(native, af, m, n);
        var (u2, s2, vt2) = Svd(managed, af, m, n);
        for (int j = 0; j < k; j++) Assert.True(Math.Abs(s1[j] - s2[j]) <= 1e-6, $"s[{j}]: {s1[j]} vs {s2[j]}");
        foreach (int rank in new[] { 1, k / 3, k - 1 })
        {
            // Rank-r truncations are sign- and rotation-free; compare them.
            var t1 = Truncation(u1, s1, vt1, m, n, rank);
            var t2 = Truncation(u2, s2, vt2, m, n, rank);
            Assert.True(FrobeniusDistance(t1, t2) <= 1e-5 * Frobenius(t1), $"rank-{rank} truncations differ");
        }
    }

    private static double[,] Truncation(float[] u, float[] s, float[] vt, int m, int n, int rank)
    {
        int k = Math.Min(m, n);
        var r = new double[m, n];
        for (int j = 0; j < rank; j++)
            for (int i = 0; i < m; i++)
                for (int c = 0; c < n; c++) r[i, c] += (double)u[i * k + j] * s[j] * vt[j * n + c];
        return r;
    }

    [Theory]
    [InlineData("native", 30, 30)]
    [InlineData("managed", 30, 30)]
    [InlineData("native", 64, 10)]
    [InlineData("managed", 64, 10)]
    public void Symmetric_eigen_gives_ascending_values_orthonormal_vectors_and_reconstructs(string provider, int n, int rank)
    {
        var cpu = Backend(provider);
        var b = M(RandomMatrix(new Random(n + rank), n, rank, Math.Min(n, rank)), n, rank);
        var sym = MatMul(b, Transpose(b));
        for (int i = 0; i < n; i++) sym[i, i] -= 3.0;   // indefinite, with an n − rank fold eigenvalue −3
        var a = Enumerable.Range(0, n * n).Select(i => (float)sym[i / n, i % n]).ToArray();
        using var at = cpu.Wrap(a, n, n);
        using var w = cpu.Empty(n);
        using var v = cpu.Empty(n, n);
        cpu.SymmetricEigen(at, w, v);
        var wv = w.ToArray();
        var vm = M(v.ToArray(), n, n);
        Assert.True(wv.Zip(wv.Skip(1)).All(p => p.First <= p.Second), "eigenvalues ascend");
        AssertOrthonormalColumns(vm, 2e-6);
        var back = MatMul(ScaleColumns(vm, wv.Select(x => (double)x).ToArray()), Transpose(vm));
        double err = FrobeniusDistance(back, M(a, n, n)) / Frobenius(M(a, n, n));
        Assert.True(err <= 1e-6, $"reconstruction error {err:E2}");
        for (int j = 0; j < n - rank; j++) Assert.True(Math.Abs(wv[j] + 3) <= 1e-4, $"w[{j}] = {wv[j]}, expected −3");
        // Eigenvalues of BBᵀ − 3I are the squared singular values of B, less 3.
        var sb = JacobiSvd(b).S.Select(x => x * x - 3).OrderBy(x => x).ToArray();
        for (int j = 0; j < rank; j++)
            Assert.True(Math.Abs(wv[n - rank + j] - sb[j]) <= 1e-5 * Math.Abs(sb[^1]), $"w[{n - rank + j}] = {wv[n - rank + j]}, expected {sb[j]}");
    }

    [Fact]
    public void Native_and_managed_eigenvalues_agree()
    {
        var native = Backend("native");
        var managed = Backend("managed");
        const int n = 48;
        var b = M(RandomMatrix(new Random(21), n, n, n), n, n);
        var sym = MatMul(b, Transpose(b));
        var a = Enumerable.Range(0, n * n).Select(i => (float)sym[i / n, i % n]).ToArray();
        float[] Values(CpuBackend cpu)
        {
            using var at = cpu.Wrap(a, n, n);
            using var w = cpu.Empty(n);
            using var v = cpu.Empty(n, n);
            cpu.SymmetricEigen(at, w, v);
            return w.ToArray();
        }
        var w1 = Values(native);
        var w2 = Values(managed);
        for (int j = 0; j < n; j++) Assert.True(Math.Abs(w1[j] - w2[j]) <= 1e-6 * w1[^1], $"w[{j}]: {w1[j]} vs {w2[j]}");
    }

    [Theory]
    [InlineData("native")]
    [InlineData("managed")]
    public void Non_finite_input_gives_nan_outputs(string provider)
    {
        var cpu = Backend(provider);
        var a = new float[12];
        a[5] = float.NaN;
        var (u, s, vt) = Svd(cpu, a, 3, 4);
        Assert.All(u.Concat(s).Concat(vt), x => Assert.True(float.IsNaN(x)));
        var sym = new float[9];
        sym[4] = float.PositiveInfinity;
        using var at = cpu.Wrap(sym, 3, 3);
        using var w = cpu.Empty(3);
        using var v = cpu.Empty(3, 3);
        cpu.SymmetricEigen(at, w, v);
        Assert.All(w.ToArray().Concat(v.ToArray()), x => Assert.True(float.IsNaN(x)));
    }

    [Fact]
    public void Svd_with_wrong_output_shapes_is_rejected()
    {
        var cpu = Backend("managed");
        using var a = cpu.Zeros(5, 3);
        using var u = cpu.Empty(5, 5);
        using var s = cpu.Empty(3);
        using var vt = cpu.Empty(3, 3);
        Assert.Throws<ArgumentException>(() => cpu.Svd(a, u, s, vt));
    }

    [Fact]
    public void Copy_block_and_scale_columns_move_and_scale_the_right_elements()
    {
        var cpu = Backend("managed");
        using var src = cpu.Wrap(Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 3, 4);
        using var dst = cpu.Zeros(4, 5);
        cpu.CopyBlock(src, 1, 1, dst, 2, 3, 2, 2);
        var d = dst.ToArray();
        Assert.Equal([5f, 6f, 9f, 10f], new[] { d[2 * 5 + 3], d[2 * 5 + 4], d[3 * 5 + 3], d[3 * 5 + 4] });
        Assert.Equal(30f, d.Sum());
        using var vec = cpu.Wrap([1f, 2f, 3f], 3);
        using var row = cpu.Zeros(5);
        cpu.CopyBlock(vec, 0, 1, row, 0, 3, 1, 2);
        Assert.Equal([0f, 0f, 0f, 2f, 3f], row.ToArray());
        Assert.Throws<ArgumentException>(() => cpu.CopyBlock(src, 2, 0, dst, 0, 0, 2, 2));

        using var scales = cpu.Wrap([1f, -1f, 0.5f, 0f], 4);
        using var scaled = cpu.Empty(3, 4);
        cpu.ScaleColumns(src, scales, scaled);
        Assert.Equal([0f, -1f, 1f, 0f, 4f, -5f, 3f, 0f, 8f, -9f, 5f, 0f], scaled.ToArray());
    }

    [Theory]
    [InlineData(null, LapackProvider.Auto)]
    [InlineData("", LapackProvider.Auto)]
    [InlineData("auto", LapackProvider.Auto)]
    [InlineData("Native", LapackProvider.Native)]
    [InlineData(" managed ", LapackProvider.Managed)]
    public void Provider_environment_variable_is_parsed(string? value, LapackProvider expected) =>
        Assert.Equal(expected, CpuLinearAlgebra.ProviderFromEnvironment(name => name == CpuLinearAlgebra.ProviderVariable ? value : null));

    [Fact]
    public void Unknown_provider_value_is_bad_input_naming_the_variable()
    {
        var e = Assert.Throws<BadInputException>(() => CpuLinearAlgebra.ProviderFromEnvironment(_ => "mkl"));
        Assert.Contains("TASKMERGE_LAPACK", e.Message);
    }

    [Fact]
    public void Lapack_library_that_does_not_exist_is_reported_not_thrown()
    {
        var (binding, detail) = Lapack.Load(name => name == Lapack.LibraryVariable ? "/nonexistent/liblapack.so" : null);
        Assert.Null(binding);
        Assert.Contains("/nonexistent/liblapack.so", detail);
    }

    [Fact]
    public void Managed_provider_is_used_when_asked_and_native_when_available()
    {
        Assert.Equal(LapackProvider.Managed, new CpuBackend(1, LapackProvider.Managed).LinearAlgebra.Provider);
        var auto = new CpuBackend(1, LapackProvider.Auto).LinearAlgebra;
        Assert.Equal(CpuLinearAlgebra.NativeAvailable(out _) ? LapackProvider.Native : LapackProvider.Managed, auto.Provider);
    }
}
