using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// Runs Svd / SymmetricEigen / CholeskySolve on a backend and checks a device result against the CPU
/// backend's: values to a relative tolerance, singular and eigen-vectors up to the sign of each pair
/// (the contract leaves it unspecified), orthonormality and reconstruction in float64. Shared by the
/// ILGPU-CPU-accelerator tests and the CUDA tests.
/// </summary>
internal static class Decompositions
{
    public sealed record SvdResult(float[] U, float[] S, float[] Vt);

    public sealed record EigenResult(float[] Values, float[] Vectors);

    /// <summary>A random m×n matrix with distinct, well separated singular values (Gaussian entries).</summary>
    public static float[] Gaussian(int m, int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, m * n).Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()))).ToArray();
    }

    /// <summary>(X + Xᵀ)/2 of a Gaussian X: symmetric with distinct eigenvalues.</summary>
    public static float[] Symmetric(int n, int seed)
    {
        var x = Gaussian(n, n, seed);
        var a = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) a[i * n + j] = (x[i * n + j] + x[j * n + i]) / 2;
        return a;
    }

    /// <summary>XᵀX/rows + diagonal·I of a Gaussian rows×n X: symmetric positive definite.</summary>
    public static float[] Spd(int n, int rows, double diagonal, int seed)
    {
        var x = Gaussian(rows, n, seed);
        var a = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = i == j ? diagonal : 0;
                for (int k = 0; k < rows; k++) s += (double)x[k * n + i] * x[k * n + j] / rows;
                a[i * n + j] = a[j * n + i] = (float)s;
            }
        return a;
    }

    public static SvdResult Svd(IBackend be, float[] a, int m, int n)
    {
        int k = Math.Min(m, n);
        using var at = BackendParity.Load(be, a, m, n);
        using var u = be.Empty(m, k);
        using var s = be.Empty(k);
        using var vt = be.Empty(k, n);
        be.Svd(at, u, s, vt);
        Assert.Equal(a, at.ToArray());
        return new(u.ToArray(), s.ToArray(), vt.ToArray());
    }

    public static EigenResult Eigen(IBackend be, float[] a, int n)
    {
        using var at = BackendParity.Load(be, a, n, n);
        using var w = be.Empty(n);
        using var v = be.Empty(n, n);
        be.SymmetricEigen(at, w, v);
        Assert.Equal(a, at.ToArray());
        return new(w.ToArray(), v.ToArray());
    }

    /// <summary>B·(A + shift·I)⁻¹ on <paramref name="be"/>, with whether it was solved; A must come back unchanged.</summary>
    public static (bool Solved, float[] X) CholeskySolve(IBackend be, float[] a, int n, double shift, float[] b, int rows)
    {
        using var at = BackendParity.Load(be, a, n, n);
        using var bt = BackendParity.Load(be, b, rows, n);
        bool solved = be.CholeskySolve(at, shift, bt);
        Assert.Equal(a, at.ToArray());
        return (solved, bt.ToArray());
    }

    /// <summary>
    /// The device SVD agrees with the CPU one: singular values to <paramref name="tolerance"/> relative
    /// to the largest, each singular-vector pair up to one sign, orthonormal factors, and u·diag(s)·vt = a.
    /// </summary>
    public static void AssertSvdMatches(SvdResult cpu, SvdResult device, float[] a, int m, int n, double tolerance)
    {
        int k = Math.Min(m, n);
        double top = cpu.S[0];
        for (int j = 0; j < k; j++)
        {
            Assert.True(Math.Abs(cpu.S[j] - device.S[j]) <= tolerance * top, $"s[{j}]: cpu {cpu.S[j]}, device {device.S[j]}");
            if (j > 0) Assert.True(device.S[j] <= device.S[j - 1], $"s not descending at {j}");
            double sign = Math.Sign(Column(cpu.U, m, k, j).Zip(Column(device.U, m, k, j), (x, y) => (double)x * y).Sum());
            for (int i = 0; i < m; i++)
                Assert.True(Math.Abs(cpu.U[i * k + j] - sign * device.U[i * k + j]) <= tolerance * 10, $"u[{i},{j}]: cpu {cpu.U[i * k + j]}, device {device.U[i * k + j]}");
            for (int i = 0; i < n; i++)
                Assert.True(Math.Abs(cpu.Vt[j * n + i] - sign * device.Vt[j * n + i]) <= tolerance * 10, $"vt[{j},{i}]: cpu {cpu.Vt[j * n + i]}, device {device.Vt[j * n + i]}");
        }
        AssertOrthonormal(device.U, m, k, columns: true, tolerance);
        AssertOrthonormal(device.Vt, k, n, columns: false, tolerance);
        double scale = a.Max(MathF.Abs);
        for (int i = 0; i < m; i++)
            for (int c = 0; c < n; c++)
            {
                double r = 0;
                for (int j = 0; j < k; j++) r += (double)device.U[i * k + j] * device.S[j] * device.Vt[j * n + c];
                Assert.True(Math.Abs(r - a[i * n + c]) <= tolerance * 10 * scale * k, $"(u·s·vt)[{i},{c}] = {r}, a = {a[i * n + c]}");
            }
    }

    /// <summary>The device eigen-decomposition agrees with the CPU one (values ascending, vectors up to sign, orthonormal).</summary>
    public static void AssertEigenMatches(EigenResult cpu, EigenResult device, int n, double tolerance)
    {
        double top = cpu.Values.Max(Math.Abs);
        for (int j = 0; j < n; j++)
        {
            Assert.True(Math.Abs(cpu.Values[j] - device.Values[j]) <= tolerance * top, $"w[{j}]: cpu {cpu.Values[j]}, device {device.Values[j]}");
            if (j > 0) Assert.True(device.Values[j] >= device.Values[j - 1], $"eigenvalues not ascending at {j}");
            double sign = Math.Sign(Column(cpu.Vectors, n, n, j).Zip(Column(device.Vectors, n, n, j), (x, y) => (double)x * y).Sum());
            for (int i = 0; i < n; i++)
                Assert.True(Math.Abs(cpu.Vectors[i * n + j] - sign * device.Vectors[i * n + j]) <= tolerance * 10,
                    $"v[{i},{j}]: cpu {cpu.Vectors[i * n + j]}, device {device.Vectors[i * n + j]}");
        }
        AssertOrthonormal(device.Vectors, n, n, columns: true, tolerance);
    }

    /// <summary>QᵀQ = I for the columns (or QQᵀ = I for the rows) of the row-major rows×cols q, in float64.</summary>
    public static void AssertOrthonormal(float[] q, int rows, int cols, bool columns, double tolerance)
    {
        int count = columns ? cols : rows, length = columns ? rows : cols;
        double Element(int vector, int e) => columns ? q[e * cols + vector] : q[vector * cols + e];
        for (int x = 0; x < count; x++)
            for (int y = 0; y <= x; y++)
            {
                double d = 0;
                for (int e = 0; e < length; e++) d += Element(x, e) * Element(y, e);
                Assert.True(Math.Abs(d - (x == y ? 1 : 0)) <= tolerance * 10, $"{(columns ? "QᵀQ" : "QQᵀ")}[{x},{y}] = {d}");
            }
    }

    private static IEnumerable<float> Column(float[] q, int rows, int cols, int j) => Enumerable.Range(0, rows).Select(i => q[i * cols + j]);
}
