using TaskMerge.Engine.Tensors.Cpu;
using Xunit;
using Kernel = TaskMerge.Engine.Tensors.Cpu.CpuBlas.MicroKernel;

namespace TaskMerge.Engine.Tests.Tensors;

/// <summary>
/// CpuBlas against a float64 reference: every micro-kernel this CPU runs, all transpose combinations,
/// sizes that are not multiples of any block size, strided operands, alpha/beta variants, and bitwise
/// thread-count independence.
/// </summary>
public class CpuBlasTests
{
    private const float Sentinel = -12345.5f;

    // m, n, k: ones (m or n = 1 runs as a GEMV, m·n·k ≤ 512 as a plain loop), primes, and sizes
    // straddling the 12×32 / 6×16 / 4×16 register tiles and KC = 256.
    private static readonly (int M, int N, int K)[] GemmSizes =
    [
        (1, 1, 1), (1, 130, 65), (130, 1, 65), (3, 17, 5), (17, 3, 65), (65, 130, 17), (130, 65, 130), (33, 65, 300), (65, 17, 1),
    ];

    private static IEnumerable<string> Kernels() =>
        Enum.GetValues<Kernel>().Where(CpuBlas.IsSupported).Select(k => k.ToString());

    public static TheoryData<string, bool, bool> KernelsAndTransposes()
    {
        var data = new TheoryData<string, bool, bool>();
        foreach (var kernel in Kernels())
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    data.Add(kernel, ta, tb);
        return data;
    }

    public static TheoryData<string, bool> KernelsAndTranspose()
    {
        var data = new TheoryData<string, bool>();
        foreach (var kernel in Kernels())
            foreach (bool t in new[] { false, true })
                data.Add(kernel, t);
        return data;
    }

    [Theory]
    [MemberData(nameof(KernelsAndTransposes))]
    public void Sgemm_MatchesReference_OddSizes_StridedOperands_BetaZeroIgnoresNaN(string kernel, bool transA, bool transB)
    {
        var kern = Enum.Parse<Kernel>(kernel);
        var rng = new Random(1234);
        foreach (var (m, n, k) in GemmSizes)
        {
            var (a, lda) = Matrix(rng, transA ? k : m, transA ? m : k, pad: 3);
            var (b, ldb) = Matrix(rng, transB ? n : k, transB ? k : n, pad: 5);
            int ldc = n + 2;
            var c = Filled(m, n, ldc, float.NaN);
            CpuBlas.SgemmWith(kern, transA, transB, m, n, k, 1.5f, a, lda, b, ldb, 0f, c, ldc, threads: 2);
            AssertGemm(transA, transB, m, n, k, 1.5f, a, lda, b, ldb, 0f, null, c, ldc, $"{kernel} {m}x{n}x{k}");
        }
    }

    [Theory]
    [InlineData(1f, 1f)]
    [InlineData(-0.5f, 2f)]
    [InlineData(2f, -1f)]
    [InlineData(0f, 0.5f)]
    [InlineData(0f, 0f)]
    public void Sgemm_AlphaBetaVariants(float alpha, float beta)
    {
        var rng = new Random(99);
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                foreach (var (m, n, k) in new[] { (3, 5, 7), (130, 65, 300), (17, 70, 0), (1, 70, 9), (40, 1, 33) })
                {
                    var (a, lda) = Matrix(rng, ta ? k : m, ta ? m : k, pad: 1);
                    var (b, ldb) = Matrix(rng, tb ? n : k, tb ? k : n, pad: 0);
                    int ldc = n + 3;
                    var c0 = Random(rng, m, n, ldc);
                    if (beta == 0f) c0[0] = float.NaN;
                    var c = (float[])c0.Clone();
                    CpuBlas.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads: 2);
                    AssertGemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c0, c, ldc, $"{m}x{n}x{k} ta={ta} tb={tb}");
                }
    }

    [Fact]
    public void Sgemm_SeveralColumnBlocks_MatchesReference()
    {
        // n·k above the packed-B budget forces several column blocks (and k = 4097 several k blocks);
        // m = 5 leaves a partial row tile for every kernel.
        var rng = new Random(5);
        int m = 5, k = 4097, n = (int)(CpuBlas.PackedBLimit / k) + 37;
        foreach (var kernel in Kernels().Select(Enum.Parse<Kernel>))
        {
            var (a, lda) = Matrix(rng, m, k, pad: 0);
            var (b, ldb) = Matrix(rng, n, k, pad: 0);
            var c = Filled(m, n, n, float.NaN);
            CpuBlas.SgemmWith(kernel, false, true, m, n, k, 1f, a, lda, b, ldb, 0f, c, n, threads: 2);
            AssertGemm(false, true, m, n, k, 1f, a, lda, b, ldb, 0f, null, c, n, kernel.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(KernelsAndTransposes))]
    public void Sgemm_ThreadCountDoesNotChangeBits(string kernel, bool transA, bool transB)
    {
        var kern = Enum.Parse<Kernel>(kernel);
        var rng = new Random(7);
        int m = 197, n = 263, k = 301;   // > SerialGemm multiply-adds, so threads really are used
        var (a, lda) = Matrix(rng, transA ? k : m, transA ? m : k, pad: 1);
        var (b, ldb) = Matrix(rng, transB ? n : k, transB ? k : n, pad: 2);
        var c0 = Random(rng, m, n, n);
        float[] Run(int threads)
        {
            var c = (float[])c0.Clone();
            CpuBlas.SgemmWith(kern, transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0.25f, c, n, threads);
            return c;
        }
        var one = Run(1);
        Assert.Equal(one, Run(2));
        Assert.Equal(one, Run(3));
        Assert.Equal(one, Run(1));
    }

    [Theory]
    [MemberData(nameof(KernelsAndTranspose))]
    public void Ssyrk_MatchesReference_AndIsExactlySymmetric(string kernel, bool transA)
    {
        var kern = Enum.Parse<Kernel>(kernel);
        var rng = new Random(42);
        foreach (var (n, k) in new[] { (1, 1), (3, 5), (17, 65), (65, 17), (130, 300), (77, 1) })
            foreach (var (alpha, beta) in new[] { (1f, 0f), (-0.5f, 1.5f) })
            {
                var (a, lda) = Matrix(rng, transA ? k : n, transA ? n : k, pad: 3);
                int ldc = n + 1;
                var c0 = SymmetricRandom(rng, n, ldc);
                if (beta == 0f) Array.Fill(c0, float.NaN, 0, (n - 1) * ldc + n);
                var c = (float[])c0.Clone();
                CpuBlas.SsyrkWith(kern, transA, n, k, alpha, a, lda, beta, c, ldc, threads: 2);
                // op(A)·op(A)ᵀ is gemm(transA, !transA) with B = A.
                string what = $"{kernel} syrk n={n} k={k} transA={transA} alpha={alpha} beta={beta}";
                AssertGemm(transA, !transA, n, n, k, alpha, a, lda, a, lda, beta, c0, c, ldc, what);
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < i; j++)
                        Assert.True(c[i * ldc + j].Equals(c[j * ldc + i]), $"{what}: C[{i},{j}] != C[{j},{i}]");
            }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Ssyrk_ThreadCountDoesNotChangeBits(bool transA)
    {
        var rng = new Random(8);
        int n = 150, k = 333;
        var (a, lda) = Matrix(rng, transA ? k : n, transA ? n : k, pad: 0);
        float[] Run(int threads)
        {
            var c = new float[n * n];
            CpuBlas.Ssyrk(transA, n, k, 1f, a, lda, 0f, c, n, threads);
            return c;
        }
        var one = Run(1);
        Assert.Equal(one, Run(2));
        Assert.Equal(one, Run(4));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Sgemv_MatchesReference(bool transA)
    {
        var rng = new Random(3);
        foreach (var (rows, cols) in new[] { (1, 1), (3, 17), (17, 3), (65, 130), (130, 65), (257, 1000), (1000, 257) })
            foreach (var (alpha, beta) in new[] { (1f, 0f), (-2f, 0.5f), (0f, 3f) })
            {
                var (a, lda) = Matrix(rng, rows, cols, pad: 2);
                int m = transA ? cols : rows, k = transA ? rows : cols;
                var x = Random(rng, 1, k, k);
                var y0 = Random(rng, 1, m, m);
                if (beta == 0f) Array.Fill(y0, float.NaN);
                var y = (float[])y0.Clone();
                CpuBlas.Sgemv(transA, rows, cols, alpha, a, lda, x, beta, y, threads: 2);
                // y = op(A)·x is C[m×1] = op(A)[m×k]·X[k×1].
                AssertGemm(transA, false, m, 1, k, alpha, a, lda, x, 1, beta, y0, y, 1, $"gemv {rows}x{cols} transA={transA} alpha={alpha} beta={beta}");
            }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Sgemv_ThreadCountDoesNotChangeBits(bool transA)
    {
        var rng = new Random(4);
        int rows = 700, cols = 900;
        var (a, lda) = Matrix(rng, rows, cols, pad: 0);
        var x = Random(rng, 1, transA ? rows : cols, transA ? rows : cols);
        float[] Run(int threads)
        {
            var y = new float[transA ? cols : rows];
            CpuBlas.Sgemv(transA, rows, cols, 1f, a, lda, x, 0f, y, threads);
            return y;
        }
        var one = Run(1);
        Assert.Equal(one, Run(2));
        Assert.Equal(one, Run(3));
    }

    [Fact]
    public void Sgemm_RejectsArraysTooShortForTheirShape()
    {
        var a = new float[10];
        var b = new float[12];
        var c = new float[12];
        Assert.Throws<ArgumentException>(() => CpuBlas.Sgemm(false, false, 3, 4, 4, 1f, a, 4, b, 4, 0f, c, 4, 1));
        Assert.Throws<ArgumentException>(() => CpuBlas.Sgemm(false, false, 3, 4, 3, 1f, a, 3, b, 4, 0f, c, 3, 1));
    }

    // ───────────── helpers ─────────────

    /// <summary>A rows×cols matrix with row stride cols + pad; the padding holds a sentinel.</summary>
    private static (float[] Data, int Ld) Matrix(Random rng, int rows, int cols, int pad)
    {
        int ld = cols + pad;
        return (Random(rng, rows, cols, ld), ld);
    }

    private static float[] Random(Random rng, int rows, int cols, int ld)
    {
        var x = Filled(rows, cols, ld, 0f);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                x[i * ld + j] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    private static float[] SymmetricRandom(Random rng, int n, int ld)
    {
        var x = Random(rng, n, n, ld);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++)
                x[j * ld + i] = x[i * ld + j];
        return x;
    }

    /// <summary>rows×cols values set to <paramref name="value"/>; the padding columns hold <see cref="Sentinel"/>.</summary>
    private static float[] Filled(int rows, int cols, int ld, float value)
    {
        var x = new float[Math.Max(1, rows == 0 ? 0 : (rows - 1) * ld + cols)];
        Array.Fill(x, Sentinel);
        for (int i = 0; i < rows; i++) Array.Fill(x, value, i * ld, cols);
        return x;
    }

    /// <summary>
    /// Checks C against alpha·op(A)·op(B) + beta·C0 computed in float64. Each element may be off by
    /// 1e-5·√k times its magnitude scale alpha·Σ|op(A)ᵢₚ·op(B)ₚⱼ| + |beta·C0ᵢⱼ| (float32 accumulation);
    /// beta == 0 must ignore C0 entirely; padding between rows must be untouched.
    /// </summary>
    private static void AssertGemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int lda, float[] b, int ldb, float beta, float[]? c0, float[] c, int ldc, string what)
    {
        double tol = 1e-5 * Math.Sqrt(Math.Max(k, 1));
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0, scale = 0;
                for (int p = 0; p < k; p++)
                {
                    double prod = (double)(transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                    s += prod;
                    scale += Math.Abs(prod);
                }
                double expected = alpha * s;
                scale = Math.Abs(alpha) * scale;
                if (beta != 0f)
                {
                    expected += beta * (double)c0![i * ldc + j];
                    scale += Math.Abs(beta * (double)c0[i * ldc + j]);
                }
                double actual = c[i * ldc + j];
                double err = Math.Abs(actual - expected);
                Assert.True(err <= tol * scale + 1e-30, $"{what}: C[{i},{j}] = {actual}, expected {expected} (err {err:E2}, bound {tol * scale:E2})");
            }
            if (i < m - 1)
                for (int j = n; j < ldc; j++)
                    Assert.True(c[i * ldc + j] == Sentinel || c0 is not null && c[i * ldc + j].Equals(c0[i * ldc + j]),
                        $"{what}: padding C[{i},{j}] was overwritten");
        }
    }
}
