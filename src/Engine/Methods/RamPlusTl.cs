using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// mergekit's <c>ramplus_tl</c> (RAM+, tensor-local): RAM with each expert's unique entries scaled by
/// λᵢ = 1 + r·min(max(ρᵢ, 0), α) (torch clamp order), ρᵢ = (its shared entries) / max(its unique entries, ε), counted per tensor.
/// </summary>
public sealed class RamPlusTlMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "ramplus_tl";

    /// <inheritdoc />
    public string Description => "RAM with unique entries rescaled by 1 + r·clamp(shared/unique, 0, α) per expert and tensor";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Float("r", 0.1, "rescaling strength"),
        ParameterDef.Float("alpha", 0.2, "upper clamp of the shared/unique ratio"),
        ParameterDef.Float("epsilon", 1e-5, "entries with |τ| ≤ epsilon do not contribute", range: ParameterRange.NonNegative),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        double r = g.Float("r"), alpha = g.Float("alpha"), epsilon = g.Float("epsilon");
        return RamMethod.Merge(g, (float)epsilon, (_, shared, unique) => 1 + r * Math.Min(Math.Max(shared / Math.Max(unique, epsilon), 0), alpha));
    }
}
