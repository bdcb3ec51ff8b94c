using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// mergekit's <c>nearswap</c>: per element, the other model's value where it lies within t of the base's,
/// else the base moved t towards it (w = clamp(t / max(|θ₀ − θ₁|, 1e-6), 0, 1), θ = w·θ₁ + (1 − w)·θ₀).
/// </summary>
public sealed class NearSwapMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "nearswap";

    /// <inheritdoc />
    public string Description => "per element: take the other model's value where it is within t of the base, else move t towards it";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        new ParameterDef("t", ParameterKind.Float, null, "similarity threshold (required; gradients and filters allowed)"),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        var be = g.Backend;
        var a = g.Base ?? throw new InvalidOperationException("nearswap needs a base tensor");
        if (g.Experts.Count > 1)
            throw new BadInputException($"tensor {g.Name}: nearswap merges exactly two models (base_model and one other), got {g.Experts.Count + 1}");
        var result = be.Empty(a.Shape.ToArray());
        if (g.Experts.Count == 0) be.Copy(a, result);
        else be.NearSwap(a, g.Experts[0].Values, (float)g.Float("t"), result);
        return result;
    }
}
