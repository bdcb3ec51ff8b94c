using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// mergekit's <c>arcee_fusion</c>: per tensor, importance = |θ₁ − θ₀|·KL(softmax θ₁ ‖ softmax θ₀) per row of the
/// last dimension; entries whose importance reaches median + 1.5·IQR (quantiles at index int(q·(n − 1)) of the
/// sorted importances) take the other model's value, the rest keep the base's. Quantiles are exact over every
/// entry; mergekit samples one million entries without a seed for tensors larger than that.
/// </summary>
public sealed class ArceeFusionMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "arcee_fusion";

    /// <inheritdoc />
    public string Description => "take the other model's entries whose |Δ|·row KL divergence is an upper outlier (≥ median + 1.5·IQR)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } = [];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        var be = g.Backend;
        var a = g.Base ?? throw new InvalidOperationException("arcee_fusion needs a base tensor");
        var shape = a.Shape.ToArray();
        if (g.Experts.Count > 1)
            throw new BadInputException($"tensor {g.Name}: arcee_fusion merges exactly two models (base_model and one other), got {g.Experts.Count + 1}");
        var result = be.Empty(shape);
        if (g.Experts.Count == 0 || a.Length == 0)
        {
            be.Copy(a, result);
            return result;
        }
        var b = g.Experts[0].Values;
        long n = a.Length;
        using var importance = be.Empty(shape);
        be.ArceeFusionImportance(b, a, shape.Length == 0 ? 1 : shape[^1], importance);
        float median = Quantile(be, importance, 0.5f), q1 = Quantile(be, importance, 0.25f), q3 = Quantile(be, importance, 0.75f);
        float threshold = median + 1.5f * (q3 - q1);
        using var mask = be.Zeros(shape);
        // importance ≥ 0, so importance ≥ threshold ⟺ |importance| > the float just below it.
        be.CountMagnitudeAbove(importance, MathF.BitDecrement(threshold), mask);
        be.Sub(b, a, result);
        be.Mul(result, mask, result);
        be.Add(result, a, result);
        g.Diagnostics["arcee_fusion_threshold"] = (double)threshold;
        g.Diagnostics["arcee_fusion_kept_fraction"] = be.Sum(mask) / n;
        return result;
    }

    /// <summary>
    /// sorted(x)[int(q·(n − 1))] for x ≥ 0: the largest value left after removing the n − 1 − index largest
    /// (a radix threshold select, no sort).
    /// </summary>
    private static float Quantile(IMergeOps be, Tensor x, float q)
    {
        long n = x.Length, index = (long)(q * (float)(n - 1));
        using var top = be.Empty(x.Shape.ToArray());
        be.Copy(x, top);
        be.KeepTopKMagnitude(top, n - 1 - index);
        be.Sub(x, top, top);
        return be.MaxAbs(top);
    }
}
