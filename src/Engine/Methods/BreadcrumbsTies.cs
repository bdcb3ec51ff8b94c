using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>Model Breadcrumbs sparsification followed by TIES sign election; mergekit's `breadcrumbs_ties`.</summary>
public sealed class BreadcrumbsTiesMethod : IMergeMethod, ITaskArithmeticConfiguration
{
    /// <inheritdoc />
    public string Name => "breadcrumbs_ties";

    /// <inheritdoc />
    public string Description => "Model Breadcrumbs sparsification, then TIES sign election";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
        [.. TaskArithmeticCore.CommonParameters(normalize: false, rescale: false), TaskArithmeticCore.Gamma];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Sparsification Sparsification => Sparsification.MagnitudeOutliers;

    /// <inheritdoc />
    public bool Consensus => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group) => TaskArithmeticCore.Merge(group, Sparsification, Consensus);
}
