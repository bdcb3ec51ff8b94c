using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// The exact K-coefficient path for gd and sgd (methods/awd.md §2): from δ⁰ = 0 every gradient
/// −Σₖβₖτₖ + γδ (+ wd·δ) lies in span{τₖ}, so δ = Σₖ aₖτₖ for ever and the whole iteration runs on
/// the K coefficients of each block in float64, with p = G_τa and s = aᵀG_τa. The coefficients of the
/// gradient are −β + γa; the update rules are those of the full-space iteration, applied to them.
/// </summary>
internal static class AwdCoefficientSolver
{
    /// <summary>Solves every block (independent problems, in parallel); returns the coefficients (blocks×K) and the summary.</summary>
    public static (double[] Coefficients, AwdSummary Summary) Solve(double[] gramTau, int blocks, int k, AwdSettings settings)
    {
        if (settings.Optimizer == AwdOptimizer.Adam)
            throw new InvalidOperationException("Adam's per-coordinate scaling leaves span{τₖ}; it needs the full-space solver");
        var a = new double[blocks * k];
        var summaries = new AwdSummary[blocks];
        Parallel.For(0, blocks, b => summaries[b] = SolveBlock(gramTau.AsSpan(b * k * k, k * k).ToArray(), k, 1.0 / blocks, settings, a.AsMemory(b * k, k)));
        var summary = summaries[0];
        for (int b = 1; b < blocks; b++) summary.Add(summaries[b]);
        return (a, summary);
    }

    private static AwdSummary SolveBlock(double[] gramTau, int k, double scale, AwdSettings settings, Memory<double> coefficients)
    {
        var buffer = new double[k];
        return AwdLoop.Run(gramTau, 1, k, scale, settings, (it, beta, gamma, p, s) =>
        {
            var a = coefficients.Span;
            for (int j = 0; j < k; j++)
            {
                double grad = -beta[j] + gamma[0] * a[j] + settings.WeightDecay * a[j];
                if (settings.Optimizer == AwdOptimizer.Sgd)
                {
                    buffer[j] = it == 1 ? grad : settings.Momentum * buffer[j] + grad;
                    grad = buffer[j];
                }
                a[j] -= settings.Lr * grad;
            }
            double sq = 0;
            for (int i = 0; i < k; i++)
            {
                double pi = 0;
                for (int j = 0; j < k; j++) pi += gramTau[i * k + j] * a[j];
                p[i] = pi;
                sq += a[i] * pi;
            }
            s[0] = sq;
        });
    }

    /// <summary>δ = Σₖ aₖτₖ per block, as a new tensor shaped like the task vectors.</summary>
    public static Tensor Delta(IBackend be, AwdBlockOps ops, IReadOnlyList<Tensor> taus, ReadOnlySpan<double> coefficients, int k)
    {
        var delta = be.Zeros(taus[0].Shape.ToArray());
        var column = new double[ops.Blocks];
        for (int j = 0; j < taus.Count; j++)
        {
            for (int b = 0; b < column.Length; b++) column[b] = coefficients[b * k + j];
            ops.AddScaled(column, taus[j], delta);
        }
        return delta;
    }
}
