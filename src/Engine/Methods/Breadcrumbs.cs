using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// Model Breadcrumbs (Davari and Belilovsky): drop the top <c>gamma</c> of each task vector's
/// magnitudes and the smallest, keeping <c>density</c>, then a weighted sum; mergekit's `breadcrumbs`.
/// </summary>
public sealed class BreadcrumbsMethod : IMergeMethod, ITaskArithmeticConfiguration
{
    /// <inheritdoc />
    public string Name => "breadcrumbs";

    /// <inheritdoc />
    public string Description => "Model Breadcrumbs: drop magnitude outliers (gamma) and the smallest, keep density, weighted sum";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
        [.. TaskArithmeticCore.CommonParameters(normalize: false, rescale: false), TaskArithmeticCore.Gamma];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Sparsification Sparsification => Sparsification.MagnitudeOutliers;

    /// <inheritdoc />
    public bool Consensus => false;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group) => TaskArithmeticCore.Merge(group, Sparsification, Consensus);
}
