using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// Iso-C, isotropic merging in the common subspace (Marczak et al., "No Task Left Behind", ICML 2025),
/// as FusionBench's <c>ISO_C_Merge</c> computes it (<c>isotropic_merging/iso_utils.py</c> <c>iso_c</c>).
/// For a 2-D tensor: Σ τᵢ = U·diag(S)·Vᵀ (thin SVD) and Δ = mean(S)·U·Vᵀ, i.e. every singular value
/// replaced by the mean of all k = min(m,n) of them. Other tensors and <c>exclude_keys</c> get the
/// mean τ. θ = θ₀ + scaling_factor·Δ.
/// </summary>
public sealed class IsoCMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "iso_c";

    /// <inheritdoc />
    public string Description => "Iso-C: SVD of Σ τᵢ with a flat (mean) spectrum (Marczak et al.)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        .. SpectralOps.ScalingFactor("scale of the merged task vector"),
        SpectralOps.ExcludeKeys,
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        double scale = SpectralOps.Scale(g, "scaling_factor", "lambda");
        if (!SpectralOps.IsSpectral(g))
            return TaskVectors.BasePlusMean(g, scale);

        var be = g.Backend;
        using var sum = TaskVectors.Sum(g, mean: false);
        var (u, s, vt) = SpectralOps.Svd(be, sum);
        using (u)
        using (s)
        using (vt)
        {
            double sigma = be.Sum(s) / s.Length;
            g.Diagnostics["isotropic_sigma"] = sigma;
            var delta = be.Empty(sum.Rows, sum.Cols);
            be.Gemm(u, false, vt, false, delta, (float)(scale * sigma));
            be.Add(g.Base!, delta, delta);
            return delta;
        }
    }
}
