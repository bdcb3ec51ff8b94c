namespace TaskMerge.Engine.Tests.Methods;

/// <summary>
/// Float64 restatements of mergekit's slerp, nuslerp, multislerp and karcher formulas, step by step as
/// mergekit's Python computes them (normalise, clamp, angle, weights; multislerp through its tangent space),
/// written independently of the engine's methods.
/// </summary>
internal static class SphericalReference
{
    private static double Norm(double[] v) => Math.Sqrt(v.Sum(x => x * x));

    private static double Dot(double[] a, double[] b) => a.Select((x, i) => x * b[i]).Sum();

    public static double[] ToDouble(float[] v) => v.Select(x => (double)x).ToArray();

    /// <summary>mergekit <c>slerp(t, v0, v1)</c> (DOT_THRESHOLD 0.9995, eps 1e-8).</summary>
    public static double[] Slerp(double t, double[] v0, double[] v1)
    {
        double n0 = Norm(v0), n1 = Norm(v1);
        var u0 = n0 > 1e-8 ? v0.Select(x => x / n0).ToArray() : v0;
        var u1 = n1 > 1e-8 ? v1.Select(x => x / n1).ToArray() : v1;
        double dot = Dot(u0, u1);
        if (Math.Abs(dot) > 0.9995) return v0.Select((x, i) => (1 - t) * x + t * v1[i]).ToArray();
        double theta0 = Math.Acos(dot), thetaT = theta0 * t;
        double s0 = Math.Sin(theta0 - thetaT) / Math.Sin(theta0), s1 = Math.Sin(thetaT) / Math.Sin(theta0);
        return v0.Select((x, i) => s0 * x + s1 * v1[i]).ToArray();
    }

    /// <summary>mergekit <c>nuslerp</c> of one pair of vectors (norm clamp 1e-7, colinear when |sin θ| &lt; 1e-8).</summary>
    private static double[] NuSlerpVector(double t, double[] v0, double[] v1)
    {
        double n0 = Math.Max(Norm(v0), 1e-7), n1 = Math.Max(Norm(v1), 1e-7);
        double cos = v0.Select((x, i) => x / n0 * (v1[i] / n1)).Sum();
        double theta = Math.Acos(Math.Min(1, Math.Max(-1, cos)));
        double sin = Math.Sin(theta);
        if (Math.Abs(sin) < 1e-8) return v0.Select((x, i) => (1 - t) * x + t * v1[i]).ToArray();
        return v0.Select((x, i) => (Math.Sin((1 - t) * theta) * x + Math.Sin(t * theta) * v1[i]) / sin).ToArray();
    }

    /// <summary>
    /// mergekit <c>NuSlerpTask</c>: t = w1/(w0+w1) (0.5 for |Σw| &lt; 1e-6); with a base, base + nuslerp of the
    /// offsets; vectors = whole tensor (flatten), rows of the last dimension, or lines along dimension 0 (row_wise).
    /// </summary>
    public static double[] NuSlerp(double[]? baseV, double[] a, double[] b, double w0, double w1, int[] shape, bool flatten, bool rowWise)
    {
        double t = Math.Abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
        var x0 = baseV is null ? a : a.Select((v, i) => v - baseV[i]).ToArray();
        var x1 = baseV is null ? b : b.Select((v, i) => v - baseV[i]).ToArray();
        int len = a.Length;
        var lines = new List<int[]>();
        if (flatten || shape.Length < 2) lines.Add(Enumerable.Range(0, len).ToArray());
        else if (rowWise)
        {
            int stride = len / shape[0];
            for (int j = 0; j < stride; j++) lines.Add(Enumerable.Range(0, shape[0]).Select(i => i * stride + j).ToArray());
        }
        else
        {
            int row = shape[^1];
            for (int r = 0; r < len / row; r++) lines.Add(Enumerable.Range(r * row, row).ToArray());
        }
        var res = new double[len];
        foreach (var idx in lines)
        {
            var m = NuSlerpVector(t, idx.Select(i => x0[i]).ToArray(), idx.Select(i => x1[i]).ToArray());
            for (int k = 0; k < idx.Length; k++) res[idx[k]] = m[k] + (baseV is null ? 0 : baseV[idx[k]]);
        }
        return res;
    }

    /// <summary>mergekit <c>multislerp</c>, through the tangent space at the weighted mean and the exponential map.</summary>
    public static double[] MultiSlerp(double[]? baseV, double[][] xs, double[] weight, bool normalizeWeights, double eps = 1e-8)
    {
        int n = xs.Length, len = xs[0].Length;
        var tv = xs.Select(x => baseV is null ? x : x.Select((v, i) => v - baseV[i]).ToArray()).ToArray();
        var w = normalizeWeights ? weight.Select(v => v / weight.Sum()).ToArray() : weight;
        var norms = tv.Select(Norm).ToArray();
        var units = tv.Select((x, k) => x.Select(v => v / (norms[k] + eps)).ToArray()).ToArray();
        var mean = new double[len];
        for (int k = 0; k < n; k++) for (int i = 0; i < len; i++) mean[i] += units[k][i] * w[k];
        double meanNorm = Norm(mean);
        double[] res;
        if (meanNorm < eps)
        {
            if (n != 2) throw new InvalidOperationException("zero weighted mean");
            res = tv[0].Select((v, i) => v * w[0] + tv[1][i] * w[1]).ToArray();
        }
        else
        {
            mean = mean.Select(v => v / meanNorm).ToArray();
            var tangent = new double[len];
            for (int k = 0; k < n; k++)
            {
                double d = Dot(units[k], mean);
                for (int i = 0; i < len; i++) tangent[i] += (units[k][i] - d * mean[i]) * w[k];
            }
            double tn = Norm(tangent) + eps;
            double avg = norms.Select((v, k) => v * w[k]).Sum();
            res = mean.Select((m, i) => (m * Math.Cos(tn) + tangent[i] * (Math.Sin(tn) / tn)) * avg).ToArray();
        }
        return baseV is null ? res : res.Select((v, i) => v + baseV[i]).ToArray();
    }

    /// <summary>mergekit <c>karcher_merge_tensors</c> with equal weights 1/N.</summary>
    public static double[] Karcher(double[][] ts, int maxIter, double tol)
    {
        int n = ts.Length, len = ts[0].Length;
        double[] alphas = Enumerable.Repeat(1.0 / n, n).ToArray();
        var norms = ts.Select(Norm).ToArray();
        var units = ts.Select((x, k) => norms[k] == 0 ? new double[len] : x.Select(v => v / norms[k]).ToArray()).ToArray();
        var valid = Enumerable.Range(0, n).Where(k => norms[k] > tol).ToArray();
        if (valid.Length == 0) return new double[len];
        double alphaSum = valid.Sum(k => alphas[k]);
        var a = valid.Select(k => alphas[k] / alphaSum).ToArray();
        var us = valid.Select(k => units[k]).ToArray();
        var u = new double[len];
        for (int k = 0; k < us.Length; k++) for (int i = 0; i < len; i++) u[i] += a[k] * us[k][i];
        double nu = Norm(u);
        u = nu < tol ? (double[])us[0].Clone() : u.Select(v => v / nu).ToArray();
        for (int iter = 0; iter < maxIter; iter++)
        {
            var T = new double[len];
            for (int k = 0; k < us.Length; k++)
            {
                double dot = Math.Min(1, Math.Max(-1, Dot(u, us[k])));
                double theta = Math.Acos(dot);
                if (theta < tol) continue;
                for (int i = 0; i < len; i++) T[i] += a[k] * (theta / Math.Sin(theta)) * (us[k][i] - dot * u[i]);
            }
            double nT = Norm(T);
            if (nT < tol) break;
            u = u.Select((v, i) => Math.Cos(nT) * v + Math.Sin(nT) * (T[i] / nT)).ToArray();
            double un = Norm(u);
            if (un > tol) u = u.Select(v => v / un).ToArray();
        }
        double s = alphas.Select((al, k) => al * norms[k]).Sum();
        return u.Select(v => s * v).ToArray();
    }
}
