namespace TaskMerge.Engine.Tests.Methods;

/// <summary>
/// Independent float64 statement of the AWD loop (docs/methods/awd.md §1.2, §7), written from the
/// paper-level definitions and not from the engine code: it works on the full D-dimensional vectors
/// (no Gram shortcut, no coefficient space) and differentiates |cos| through the unit vectors,
/// ∂|cᵢⱼ|/∂vᵢ = sign(cᵢⱼ)(uⱼ − cᵢⱼuᵢ)/nᵢ. A problem is K flattened task vectors and a list of
/// blocks (index ranges): one block for model/tensor granularity, one per row for row granularity.
/// </summary>
internal static class AwdReference
{
    public static (int Start, int Length)[] WholeBlock(int n) => [(0, n)];

    public static (int Start, int Length)[] RowBlocks(int rows, int cols) =>
        Enumerable.Range(0, rows).Select(r => (r * cols, cols)).ToArray();

    /// <summary>L = mean over blocks of [1/(K(K−1))·Σ_{i≠j}|cos(τᵢ−δ, τⱼ−δ)|] + α·Σ_blocks ‖δ_b‖.</summary>
    public static double Loss(double[][] taus, double[] delta, (int Start, int Length)[] blocks, double alpha)
    {
        int k = taus.Length;
        double orth = 0, reg = 0;
        foreach (var (start, len) in blocks)
        {
            var v = taus.Select(t => Enumerable.Range(start, len).Select(i => t[i] - delta[i]).ToArray()).ToArray();
            var n = v.Select(x => Math.Sqrt(Dot(x, x))).ToArray();
            double sum = 0;
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++)
                    if (i != j) sum += Math.Abs(Dot(v[i], v[j]) / Math.Max(n[i] * n[j], 1e-8));
            orth += sum / (k * (k - 1.0));
            reg += Math.Sqrt(Enumerable.Range(start, len).Sum(i => delta[i] * delta[i]));
        }
        return orth / blocks.Length + alpha * reg;
    }

    public static double[] Gradient(double[][] taus, double[] delta, (int Start, int Length)[] blocks, double alpha)
    {
        int k = taus.Length;
        var g = new double[delta.Length];
        foreach (var (start, len) in blocks)
        {
            var v = taus.Select(t => Enumerable.Range(start, len).Select(i => t[i] - delta[i]).ToArray()).ToArray();
            var n = v.Select(x => Math.Sqrt(Dot(x, x))).ToArray();
            if (n.Any(x => x == 0)) throw new InvalidOperationException("reference assumes τᵢ ≠ δ in every block");
            var u = v.Select((x, i) => x.Select(e => e / n[i]).ToArray()).ToArray();
            double w = 2.0 / (k * (k - 1.0)) / blocks.Length;
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++)
                {
                    if (i == j) continue;
                    double c = Dot(u[i], u[j]), s = Math.Sign(c);
                    for (int e = 0; e < len; e++) g[start + e] -= w * s * (u[j][e] - c * u[i][e]) / n[i];
                }
            double nd = Math.Sqrt(Enumerable.Range(start, len).Sum(i => delta[i] * delta[i]));
            if (nd > 0)
                for (int e = start; e < start + len; e++) g[e] += alpha * delta[e] / nd;
        }
        return g;
    }

    /// <summary>The optimisation from δ = 0 with torch's update rules (SGD: buf = g at step 1, then μ·buf + g; Adam: β 0.9/0.999, eps 1e-8).</summary>
    public static double[] Solve(double[][] taus, (int Start, int Length)[] blocks, string optimizer, double lr, int iterations,
        double alpha, double momentum = 0.9, double weightDecay = 0)
    {
        int n = taus[0].Length;
        var delta = new double[n];
        var buf = new double[n];
        var m = new double[n];
        var v = new double[n];
        for (int t = 1; t <= iterations; t++)
        {
            var g = Gradient(taus, delta, blocks, alpha);
            for (int i = 0; i < n; i++)
            {
                double gi = g[i] + weightDecay * delta[i];
                switch (optimizer)
                {
                    case "gd":
                        delta[i] -= lr * gi;
                        break;
                    case "sgd":
                        buf[i] = t == 1 ? gi : momentum * buf[i] + gi;
                        delta[i] -= lr * buf[i];
                        break;
                    case "adam":
                        // torch multiplies float32 state by float32-rounded coefficients: β₂ = 0.999f, 1 − β₂ = 0.001f
                        // (their sum is not exactly 1); the update below uses those values, in float64.
                        m[i] = m[i] + (double)0.1f * (gi - m[i]);
                        v[i] = (double)0.999f * v[i] + (double)0.001f * gi * gi;
                        double mHat = m[i] / (1 - Math.Pow(0.9, t)), vHat = v[i] / (1 - Math.Pow(0.999, t));
                        delta[i] -= lr * mHat / (Math.Sqrt(vHat) + 1e-8);
                        break;
                    default:
                        throw new ArgumentException(optimizer);
                }
            }
        }
        return delta;
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
