using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>DELLA drop and L1 rescale, then a weighted sum; mergekit's `della_linear`.</summary>
public sealed class DellaLinearMethod : IMergeMethod, ITaskArithmeticConfiguration
{
    /// <inheritdoc />
    public string Name => "della_linear";

    /// <inheritdoc />
    public string Description => "DELLA drop and L1 rescale, then a weighted sum";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
        [.. TaskArithmeticCore.CommonParameters(normalize: false, rescale: true), TaskArithmeticCore.Epsilon];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Sparsification Sparsification => Sparsification.DellaMagprune;

    /// <inheritdoc />
    public bool Consensus => false;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group) => TaskArithmeticCore.Merge(group, Sparsification, Consensus);
}
