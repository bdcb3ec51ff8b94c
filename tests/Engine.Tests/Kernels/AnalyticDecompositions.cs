using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// Matrices built from chosen factors, so a backend's Svd / SymmetricEigen / CholeskySolve can be checked
/// against the answer itself rather than against another implementation: A = U·diag(s)·Vᵀ with
/// orthogonal U, V from products of Householder reflections; A = Q·diag(λ)·Qᵀ; A = L·Lᵀ with B = X·A so
/// that B·A⁻¹ = X. Factors are float64; A is rounded to float32 once, which moves singular values and
/// eigenvalues by at most ‖ΔA‖₂ ≤ √(mn)·2⁻²⁴·max|A| (Weyl), far below the tolerances used.
/// </summary>
internal static class AnalyticDecompositions
{
    /// <summary>An n×n orthogonal matrix (row-major): the product of <paramref name="n"/> Householder reflections I − 2vvᵀ/vᵀv.</summary>
    public static double[] Orthogonal(int n, int seed)
    {
        var r = new Random(seed);
        var q = new double[n * n];
        for (int i = 0; i < n; i++) q[i * n + i] = 1;
        for (int h = 0; h < n; h++)
        {
            var v = Enumerable.Range(0, n).Select(_ => r.NextDouble() * 2 - 1).ToArray();
            double vv = v.Sum(x => x * x);
            for (int row = 0; row < n; row++)
            {
                double dot = 0;
                for (int j = 0; j < n; j++) dot += q[row * n + j] * v[j];
                for (int j = 0; j < n; j++) q[row * n + j] -= 2 * dot / vv * v[j];
            }
        }
        return q;
    }

    /// <summary>m×n A = U[:, :k]·diag(s)·V[:, :k]ᵀ with s = k, k − 0.75, … (distinct, descending), returning A and the factors.</summary>
    public static (float[] A, double[] U, double[] S, double[] V) SvdProblem(int m, int n, int seed)
    {
        int k = Math.Min(m, n);
        double[] u = Orthogonal(m, seed), v = Orthogonal(n, seed + 1);
        var s = Enumerable.Range(0, k).Select(i => k - 0.75 * i + 0.5).ToArray();
        var a = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int t = 0; t < k; t++) sum += u[i * m + t] * s[t] * v[j * n + t];
                a[i * n + j] = (float)sum;
            }
        return (a, u, s, v);
    }

    /// <summary>Checks an Svd result against the chosen factors: values to a relative tolerance, vectors up to sign.</summary>
    public static void AssertSvdIs(Decompositions.SvdResult got, double[] u, double[] s, double[] v, int m, int n, double tol)
    {
        int k = Math.Min(m, n);
        for (int t = 0; t < k; t++)
        {
            Assert.True(Math.Abs(got.S[t] - s[t]) <= tol * s[0], $"s[{t}] = {got.S[t]}, expected {s[t]}");
            double du = 0, dv = 0;
            for (int i = 0; i < m; i++) du += got.U[i * k + t] * u[i * m + t];
            for (int j = 0; j < n; j++) dv += got.Vt[t * n + j] * v[j * n + t];
            Assert.True(Math.Abs(Math.Abs(du) - 1) <= 10 * tol, $"column {t} of U: |⟨u, u*⟩| = {Math.Abs(du)}");
            Assert.True(Math.Abs(du * dv - 1) <= 20 * tol, $"pair {t}: the signs of u and v disagree (⟨u,u*⟩·⟨v,v*⟩ = {du * dv})");
        }
    }

    /// <summary>Symmetric n×n A = Q·diag(λ)·Qᵀ with λ distinct and of both signs (ascending), with Q and λ.</summary>
    public static (float[] A, double[] Q, double[] Lambda) EigenProblem(int n, int seed)
    {
        var q = Orthogonal(n, seed);
        var lambda = Enumerable.Range(0, n).Select(i => -n / 2.0 + 1.25 * i + 0.3).ToArray();
        var a = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int t = 0; t < n; t++) sum += q[i * n + t] * lambda[t] * q[j * n + t];
                a[i * n + j] = (float)sum;
            }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) a[j * n + i] = a[i * n + j];
        return (a, q, lambda);
    }

    public static void AssertEigenIs(Decompositions.EigenResult got, double[] q, double[] lambda, int n, double tol)
    {
        double scale = lambda.Max(Math.Abs);
        for (int t = 0; t < n; t++)
        {
            Assert.True(Math.Abs(got.Values[t] - lambda[t]) <= tol * scale, $"λ[{t}] = {got.Values[t]}, expected {lambda[t]}");
            double d = 0;
            for (int i = 0; i < n; i++) d += got.Vectors[i * n + t] * q[i * n + t];
            Assert.True(Math.Abs(Math.Abs(d) - 1) <= 10 * tol, $"eigenvector {t}: |⟨v, q⟩| = {Math.Abs(d)}");
        }
    }

    /// <summary>SPD A = L·Lᵀ (L lower triangular with diagonal in [1, 2]), X [rows, n] and B = X·A, so B·A⁻¹ = X.</summary>
    public static (float[] A, float[] B, double[] X) CholeskyProblem(int n, int rows, int seed)
    {
        var r = new Random(seed);
        var l = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < i; j++) l[i * n + j] = (r.NextDouble() - 0.5) * 0.5;
            l[i * n + i] = 1 + r.NextDouble();
        }
        var a = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double sum = 0;
                for (int t = 0; t <= j; t++) sum += l[i * n + t] * l[j * n + t];
                a[i * n + j] = a[j * n + i] = (float)sum;
            }
        var x = Enumerable.Range(0, rows * n).Select(_ => r.NextDouble() * 2 - 1).ToArray();
        var b = new float[rows * n];
        for (int row = 0; row < rows; row++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int t = 0; t < n; t++) sum += x[row * n + t] * a[t * n + j];
                b[row * n + j] = (float)sum;
            }
        return (a, b, x);
    }

    /// <summary>Runs all three on <paramref name="be"/> and checks them against the chosen factors.</summary>
    public static void CheckAll(IBackend be, int m, int n, double tol)
    {
        var (a, u, s, v) = SvdProblem(m, n, m * 7 + n);
        AssertSvdIs(Decompositions.Svd(be, a, m, n), u, s, v, m, n, tol);

        var (sym, q, lambda) = EigenProblem(n, n + 3);
        AssertEigenIs(Decompositions.Eigen(be, sym, n), q, lambda, n, tol);

        var (spd, rhs, x) = CholeskyProblem(n, 5, n + 11);
        var (solved, got) = Decompositions.CholeskySolve(be, spd, n, 0, rhs, 5);
        Assert.True(solved);
        double worst = x.Select((xv, i) => Math.Abs(got[i] - xv)).Max();
        Assert.True(worst <= 50 * tol, $"max |B·A⁻¹ − X| = {worst}");
    }
}
