using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// mergekit's <c>passthrough</c>: the one input model's tensor, times its per-model <c>scale</c> (filters and
/// gradients allowed). mergekit uses it for frankenmerges through <c>slices:</c> (one source per slice, stacked);
/// under <c>models:</c> it takes exactly one model (a <c>base_model</c> counts as one, as in mergekit).
/// </summary>
public sealed class PassthroughMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "passthrough";

    /// <inheritdoc />
    public string Description => "copy the one input model, each tensor times its scale";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Float("scale", 1.0, "per-model factor on the tensor (mergekit default: none)", perModel: true),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => false;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        var be = g.Backend;
        int inputs = g.Experts.Count + (g.Base is null ? 0 : 1);
        if (inputs != 1)
            throw new BadInputException($"tensor {g.Name}: passthrough takes exactly one model, got {inputs} (stack models through slices: with one source each)");
        var (values, model) = g.Base is { } b ? (b, -1) : (g.Experts[0].Values, g.Experts[0].Model);
        var result = be.Empty(values.Shape.ToArray());
        be.Scale(values, (float)g.Float("scale", model), result);
        return result;
    }
}
