namespace TaskMerge.Engine.Tests.Methods;

/// <summary>
/// Independent float64 re-statement of FusionBench's TSV-M and Iso-C / Iso-CTS, written from
/// FusionBench's code structure (<c>TSVM_utils.compute_and_sum_svd_mem_reduction</c>,
/// <c>iso_utils.iso_c</c>, <c>iso_utils.iso_cts</c>), not from the engine: zero-padded k-wide
/// concatenations exactly as FusionBench builds them, its integer arithmetic for ranks, and its
/// own SVD (one-sided Jacobi, which is accurate to float64 rounding) instead of the engine's
/// LAPACK/managed op. Task vectors are formed in float32 as the engine forms them; everything after
/// that is float64. Inputs and outputs are row-major m×n arrays.
/// </summary>
internal static class SpectralReference
{
    public static double[,] TsvM(double[][,] taus)
    {
        int m = taus[0].GetLength(0), n = taus[0].GetLength(1), k = Math.Min(m, n), t = taus.Length;
        int r = (int)(k * (1.0 / t));
        var sumU = new double[m, k];
        var sumS = new double[k];
        var sumV = new double[k, n];
        for (int i = 0; i < t; i++)
        {
            var (u, s, vt) = JacobiSvd(taus[i]);
            for (int j = 0; j < r; j++)
            {
                for (int row = 0; row < m; row++) sumU[row, i * r + j] = u[row, j];
                sumS[i * r + j] = s[j];
                for (int col = 0; col < n; col++) sumV[i * r + j, col] = vt[j, col];
            }
        }
        return MatMul(ScaleColumns(Polar(sumU), sumS), Polar(sumV));
    }

    public static double[,] IsoC(double[][,] taus)
    {
        var (u, s, vt) = JacobiSvd(Sum(taus));
        double mean = s.Average();
        return MatMul(ScaleColumns(u, s.Select(_ => mean).ToArray()), vt);
    }

    public static double[,] IsoCts(double[][,] taus, double commonSpaceFraction)
    {
        int m = taus[0].GetLength(0), n = taus[0].GetLength(1), k = Math.Min(m, n), t = taus.Length;
        var (c, d) = SubspaceSizes(k, t, commonSpaceFraction);
        var (u, s, vt) = JacobiSvd(Sum(taus));
        var uc = new double[m, c];
        for (int row = 0; row < m; row++)
            for (int j = 0; j < c; j++) uc[row, j] = u[row, j];

        var combinedU = new double[m, k];
        var combinedS = new double[k];
        var combinedV = new double[k, n];
        for (int i = 0; i < t; i++)
        {
            var residual = Subtract(taus[i], MatMul(MatMul(uc, Transpose(uc)), taus[i]));
            var (ut, st, vtt) = JacobiSvd(residual);
            for (int j = 0; j < d; j++)
            {
                for (int row = 0; row < m; row++) combinedU[row, i * d + j] = ut[row, j];
                combinedS[i * d + j] = st[j];
                for (int col = 0; col < n; col++) combinedV[i * d + j, col] = vtt[j, col];
            }
        }
        for (int j = 0; j < c; j++)
        {
            for (int row = 0; row < m; row++) combinedU[row, t * d + j] = u[row, j];
            combinedS[t * d + j] = s[j];
            for (int col = 0; col < n; col++) combinedV[t * d + j, col] = vt[j, col];
        }
        double mean = combinedS.Average();
        var uo = Polar(combinedU);
        var vo = Polar(combinedV);
        return MatMul(ScaleColumns(uo, combinedS.Select(_ => mean).ToArray()), vo);
    }

    /// <summary>FusionBench: c = int(k·f); c = k − round((k − c)/T)·T with Python's round (half to even); d = int((k − c)/T).</summary>
    public static (int Common, int PerTask) SubspaceSizes(int k, int t, double fraction)
    {
        int c = (int)(k * fraction);
        c = k - (int)PythonRound((double)(k - c) / t) * t;
        return (c, (int)((double)(k - c) / t));
    }

    private static double PythonRound(double x)
    {
        double floor = Math.Floor(x), frac = x - floor;
        if (frac != 0.5) return frac < 0.5 ? floor : floor + 1;
        return floor % 2 == 0 ? floor : floor + 1;
    }

    /// <summary>The orthogonal polar factor U·Vᵀ of x (FusionBench's <c>u @ v</c> of <c>torch.linalg.svd</c>).</summary>
    public static double[,] Polar(double[,] x)
    {
        var (u, _, vt) = JacobiSvd(x);
        return MatMul(u, vt);
    }

    /// <summary>
    /// Thin SVD by one-sided (Hestenes) Jacobi: rotate column pairs of a tall copy until they are
    /// mutually orthogonal; the column norms are the singular values. Descending order. A singular
    /// value below 1e-12 of the largest counts as zero and gets a zero left vector: the zero-padded
    /// blocks FusionBench orthogonalises are rank-deficient, and there the left vectors of zero
    /// singular values are arbitrary (torch completes them to an orthonormal basis); they only ever
    /// meet zero entries of S, so any choice gives the same merged matrix, but a Jacobi column of
    /// rounding noise normalised to unit length would not be a valid choice.
    /// </summary>
    public static (double[,] U, double[] S, double[,] Vt) JacobiSvd(double[,] a)
    {
        int m = a.GetLength(0), n = a.GetLength(1);
        if (m < n)
        {
            var (ut, st, vtt) = JacobiSvd(Transpose(a));
            return (Transpose(vtt), st, Transpose(ut));
        }
        var w = (double[,])a.Clone();
        var v = new double[n, n];
        for (int i = 0; i < n; i++) v[i, i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            bool rotated = false;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double alpha = 0, beta = 0, gamma = 0;
                    for (int i = 0; i < m; i++)
                    {
                        alpha += w[i, p] * w[i, p];
                        beta += w[i, q] * w[i, q];
                        gamma += w[i, p] * w[i, q];
                    }
                    if (gamma == 0 || Math.Abs(gamma) <= 1e-15 * Math.Sqrt(alpha * beta)) continue;
                    rotated = true;
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = (zeta >= 0 ? 1 : -1) / (Math.Abs(zeta) + Math.Sqrt(1 + zeta * zeta));
                    double c = 1 / Math.Sqrt(1 + t * t), s = c * t;
                    Rotate(w, m, p, q, c, s);
                    Rotate(v, n, p, q, c, s);
                }
            if (!rotated) break;
        }
        var norms = Enumerable.Range(0, n).Select(j => Math.Sqrt(Enumerable.Range(0, m).Sum(i => w[i, j] * w[i, j]))).ToArray();
        var order = Enumerable.Range(0, n).OrderByDescending(j => norms[j]).ToArray();
        var u = new double[m, n];
        var sv = new double[n];
        var vtOut = new double[n, n];
        for (int j = 0; j < n; j++)
        {
            int o = order[j];
            sv[j] = norms[o];
            bool zero = norms[o] <= 1e-12 * norms[order[0]];
            for (int i = 0; i < m; i++) u[i, j] = zero ? 0 : w[i, o] / norms[o];
            for (int i = 0; i < n; i++) vtOut[j, i] = v[i, o];
        }
        return (u, sv, vtOut);
    }

    private static void Rotate(double[,] x, int rows, int p, int q, double c, double s)
    {
        for (int i = 0; i < rows; i++)
        {
            double xp = x[i, p], xq = x[i, q];
            x[i, p] = c * xp - s * xq;
            x[i, q] = s * xp + c * xq;
        }
    }

    public static double[,] MatMul(double[,] a, double[,] b)
    {
        int m = a.GetLength(0), k = a.GetLength(1), n = b.GetLength(1);
        var c = new double[m, n];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++)
            {
                double aip = a[i, p];
                if (aip == 0) continue;
                for (int j = 0; j < n; j++) c[i, j] += aip * b[p, j];
            }
        return c;
    }

    public static double[,] Transpose(double[,] a)
    {
        int m = a.GetLength(0), n = a.GetLength(1);
        var t = new double[n, m];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) t[j, i] = a[i, j];
        return t;
    }

    public static double[,] ScaleColumns(double[,] a, double[] s)
    {
        var r = (double[,])a.Clone();
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++) r[i, j] *= s[j];
        return r;
    }

    public static double[,] Sum(double[][,] xs)
    {
        var r = new double[xs[0].GetLength(0), xs[0].GetLength(1)];
        foreach (var x in xs)
            for (int i = 0; i < r.GetLength(0); i++)
                for (int j = 0; j < r.GetLength(1); j++) r[i, j] += x[i, j];
        return r;
    }

    public static double[,] Subtract(double[,] a, double[,] b)
    {
        var r = (double[,])a.Clone();
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++) r[i, j] -= b[i, j];
        return r;
    }

    /// <summary>Row-major float array → matrix.</summary>
    public static double[,] FromRowMajor(IReadOnlyList<double> v, int m, int n)
    {
        var r = new double[m, n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) r[i, j] = v[i * n + j];
        return r;
    }
}
