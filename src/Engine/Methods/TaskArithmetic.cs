using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>θ₀ + λ·Σ wᵢτᵢ (Ilharco et al.); mergekit's `task_arithmetic`.</summary>
public sealed class TaskArithmeticMethod : IMergeMethod, ITaskArithmeticConfiguration
{
    /// <inheritdoc />
    public string Name => "task_arithmetic";

    /// <inheritdoc />
    public string Description => "θ₀ + λ·Σ wᵢτᵢ (Ilharco et al.)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } = TaskArithmeticCore.CommonParameters(normalize: false, rescale: false);

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Sparsification Sparsification => Sparsification.None;

    /// <inheritdoc />
    public bool Consensus => false;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group) => TaskArithmeticCore.Merge(group, Sparsification, Consensus);
}
