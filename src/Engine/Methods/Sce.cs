using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// mergekit's <c>sce</c> (Select, Calculate, Erase; FuseChat): per tensor keep the int(select_topk·n)
/// entries where the task vectors vary most across experts (population variance; n = entries of non-zero
/// variance), weight each expert by its mean squared masked τᵢ over their sum (uniform when that sum is
/// below 1e-6), erase entries against the majority sign of Σ τᵢ, and divide by the surviving weights
/// (clamped at 1e-6).
/// </summary>
public sealed class SceMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "sce";

    /// <inheritdoc />
    public string Description => "keep the top select_topk high-variance entries, weight experts by mean τ², erase minority signs";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Float("select_topk", 1.0, "fraction of the non-zero-variance entries kept (≥ 1 keeps all, ≤ 0 none)"),
        ParameterDef.Bool("int8_mask", false, "accepted for mergekit compatibility (no effect)"),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        var be = g.Backend;
        var baseT = g.Base ?? throw new InvalidOperationException("sce needs a base tensor");
        var shape = baseT.Shape.ToArray();
        int k = g.Experts.Count;
        var taus = TaskVectors.All(g);
        try
        {
            double topk = g.Float("select_topk");
            if (k > 0 && topk < 1) Select(be, taus, shape, topk);

            var weights = taus.Select(t => t.Length == 0 ? 0 : be.SumSquares(t) / t.Length).ToArray();
            double sum = weights.Sum();
            for (int i = 0; i < k; i++) weights[i] = Math.Abs(sum) < 1e-6 ? 1.0 / k : weights[i] / sum;
            g.Diagnostics["sce_weights"] = weights;

            using var total = be.Zeros(shape);
            foreach (var t in taus) be.Add(total, t, total);
            using var denominator = be.Zeros(shape);
            var result = be.Zeros(shape);
            for (int i = 0; i < k; i++) be.SignAgreeAccumulate(taus[i], total, (float)weights[i], result, denominator);
            be.DivClampedBelow(result, denominator, 1e-6f, result);
            be.Add(result, baseT, result);
            return result;
        }
        finally
        {
            foreach (var t in taus) t.Dispose();
        }
    }

    /// <summary>Zeroes every τᵢ outside the int(fraction·nonzero) entries of largest variance across the experts.</summary>
    private static void Select(IMergeOps be, List<Tensor> taus, int[] shape, double fraction)
    {
        using var mask = be.Zeros(shape);
        if (fraction > 0)
        {
            using var variance = be.Zeros(shape);
            using (var mean = be.Zeros(shape))
            using (var deviation = be.Empty(shape))
            {
                foreach (var t in taus) be.Add(mean, t, mean);
                be.Scale(mean, 1f / taus.Count, mean);
                foreach (var t in taus)
                {
                    be.Sub(t, mean, deviation);
                    be.Mul(deviation, deviation, deviation);
                    be.Add(variance, deviation, variance);
                }
                be.Scale(variance, 1f / taus.Count, variance);
            }
            using (var nonzero = be.Zeros(shape))
            {
                be.CountMagnitudeAbove(variance, 0f, nonzero);
                long keep = (long)(Math.Round(be.Sum(nonzero)) * fraction);
                be.KeepTopKMagnitude(variance, keep);
            }
            be.CountMagnitudeAbove(variance, 0f, mask);
        }
        foreach (var t in taus) be.Mul(t, mask, t);
    }
}
