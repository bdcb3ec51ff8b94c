using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>DELLA (Deep et al.): magnitude-ranked drop probabilities, L1 rescale, TIES sign election; mergekit's `della`.</summary>
public sealed class DellaMethod : IMergeMethod, ITaskArithmeticConfiguration
{
    /// <inheritdoc />
    public string Name => "della";

    /// <inheritdoc />
    public string Description => "DELLA: magnitude-ranked drop probabilities, L1 rescale, TIES sign election (Deep et al.)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
        [.. TaskArithmeticCore.CommonParameters(normalize: true, rescale: true), TaskArithmeticCore.Epsilon];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Sparsification Sparsification => Sparsification.DellaMagprune;

    /// <inheritdoc />
    public bool Consensus => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group) => TaskArithmeticCore.Merge(group, Sparsification, Consensus);
}
