using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>DARE drop and rescale, then TIES sign election; mergekit's `dare_ties`.</summary>
public sealed class DareTiesMethod : IMergeMethod, ITaskArithmeticConfiguration
{
    /// <inheritdoc />
    public string Name => "dare_ties";

    /// <inheritdoc />
    public string Description => "DARE drop and rescale, then TIES sign election";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } = TaskArithmeticCore.CommonParameters(normalize: false, rescale: true);

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Sparsification Sparsification => Sparsification.Random;

    /// <inheritdoc />
    public bool Consensus => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group) => TaskArithmeticCore.Merge(group, Sparsification, Consensus);
}
