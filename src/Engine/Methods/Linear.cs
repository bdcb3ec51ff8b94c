using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>Weighted average of the models (model soups); mergekit's <c>linear</c>.</summary>
public sealed class LinearMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "linear";

    /// <inheritdoc />
    public string Description => "Σ wᵢθᵢ (÷ Σ wᵢ when normalize), model soups";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Float("weight", 1.0, "per-model weight wᵢ", perModel: true),
        ParameterDef.Bool("normalize", true, "divide by Σ wᵢ"),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => false;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        var be = g.Backend;
        var result = be.Zeros(g.Shape.ToArray());
        using var scaled = be.Empty(g.Shape.ToArray());
        float sum = 0f;
        foreach (var e in g.Experts)
        {
            float w = (float)g.Float("weight", e.Model);
            sum += w;
            be.Scale(e.Values, w, scaled);
            be.Add(result, scaled, result);
        }
        if (g.Bool("normalize"))
        {
            if (sum == 0f) throw new BadInputException($"tensor {g.Name}: linear weights sum to 0 with normalize: true");
            be.Scale(result, 1f / sum, result);
        }
        return result;
    }
}
