using System.Numerics.Tensors;

namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>The CPU twin of potrf + potrs: a float64 Cholesky factorisation and triangular solves.</summary>
internal static class CpuCholesky
{
    /// <summary>b[m×n] ← b·(a + shift·I)⁻¹ for symmetric a[n×n] (lower triangle read); false when not positive definite.</summary>
    public static bool Solve(float[] a, int n, double shift, float[] b, int m, ParallelOptions parallel)
    {
        var l = Factor(a, n, shift, parallel);
        if (l is null) return false;
        Parallel.For(0, m, parallel, () => new double[n], (r, _, y) =>
        {
            var row = b.AsSpan(r * n, n);
            for (int i = 0; i < n; i++) y[i] = row[i];
            SolveInPlace(l, n, y);
            for (int i = 0; i < n; i++) row[i] = (float)y[i];
            return y;
        }, _ => { });
        return true;
    }

    /// <summary>
    /// Lower Cholesky factor L (row-major, upper part unused) of a + shift·I, or null when a pivot is
    /// not positive. Left-looking by columns: L[i,j] = (A[i,j] − L[i,:j]·L[j,:j]) / L[j,j], so every dot
    /// product runs over contiguous row prefixes; the rows below a pivot are independent.
    /// </summary>
    private static double[]? Factor(float[] a, int n, double shift, ParallelOptions parallel)
    {
        var l = new double[(long)n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++) l[(long)i * n + j] = a[(long)i * n + j];
            l[(long)i * n + i] += shift;
        }
        for (int j = 0; j < n; j++)
        {
            var lj = l.AsSpan(j * n, j);
            double d = l[(long)j * n + j] - TensorPrimitives.Dot<double>(lj, lj);
            if (!(d > 0) || !double.IsFinite(d)) return null;
            double pivot = Math.Sqrt(d);
            l[(long)j * n + j] = pivot;
            void Row(int i) => l[(long)i * n + j] = (l[(long)i * n + j] - TensorPrimitives.Dot<double>(l.AsSpan(i * n, j), l.AsSpan(j * n, j))) / pivot;
            if ((long)(n - j) * j < 1 << 15)
                for (int i = j + 1; i < n; i++) Row(i);
            else
                Parallel.For(j + 1, n, parallel, Row);
        }
        return l;
    }

    /// <summary>y ← (L·Lᵀ)⁻¹·y: forward substitution with L, then backward with Lᵀ (as row updates of L).</summary>
    private static void SolveInPlace(double[] l, int n, double[] y)
    {
        for (int i = 0; i < n; i++)
            y[i] = (y[i] - TensorPrimitives.Dot<double>(l.AsSpan(i * n, i), y.AsSpan(0, i))) / l[(long)i * n + i];
        for (int i = n - 1; i >= 0; i--)
        {
            y[i] /= l[(long)i * n + i];
            var head = y.AsSpan(0, i);
            TensorPrimitives.MultiplyAdd<double>(l.AsSpan(i * n, i), -y[i], head, head);
        }
    }
}
