using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>TIES: top-density trim, sign election, disjoint mean (Yadav et al.); mergekit's `ties`.</summary>
public sealed class TiesMethod : IMergeMethod, ITaskArithmeticConfiguration
{
    /// <inheritdoc />
    public string Name => "ties";

    /// <inheritdoc />
    public string Description => "TIES: top-density trim, sign election, disjoint mean (Yadav et al.)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } = TaskArithmeticCore.CommonParameters(normalize: true, rescale: false);

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Sparsification Sparsification => Sparsification.Magnitude;

    /// <inheritdoc />
    public bool Consensus => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group) => TaskArithmeticCore.Merge(group, Sparsification, Consensus);
}
