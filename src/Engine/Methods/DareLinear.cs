using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>DARE: random drop with rescale, then a weighted sum (Yu et al.); mergekit's `dare_linear`.</summary>
public sealed class DareLinearMethod : IMergeMethod, ITaskArithmeticConfiguration
{
    /// <inheritdoc />
    public string Name => "dare_linear";

    /// <inheritdoc />
    public string Description => "DARE: random drop with rescale, then a weighted sum (Yu et al.)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } = TaskArithmeticCore.CommonParameters(normalize: false, rescale: true);

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Sparsification Sparsification => Sparsification.Random;

    /// <inheritdoc />
    public bool Consensus => false;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group) => TaskArithmeticCore.Merge(group, Sparsification, Consensus);
}
