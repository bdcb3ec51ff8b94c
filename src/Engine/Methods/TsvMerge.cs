using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// TSV-M, Task Singular Vectors merge (Gargiulo et al., CVPR 2025), as FusionBench's
/// <c>TaskSingularVectorMerging</c> computes it (<c>TSVM_utils.compute_and_sum_svd_mem_reduction</c>).
/// For a 2-D tensor m×n with k = min(m,n) and T experts: each τᵢ keeps its top r = int(k·(1/T))
/// singular triplets; the kept U, S, Vᵀ blocks are concatenated (U_cat m×Tr, S_cat, V_cat Tr×n);
/// U_cat and V_cat are replaced by their orthogonal polar factors (Procrustes: X·Yᵀ of their SVD);
/// Δ = U_⊥·diag(S_cat)·V_⊥. Other tensors and <c>exclude_keys</c> get the mean τ.
/// θ = θ₀ + alpha·Δ.
/// </summary>
/// <remarks>
/// FusionBench writes the blocks into zero-padded k-wide matrices before orthogonalising; the zero
/// columns only meet zero singular values, so the compact T·r-wide form here gives the same Δ
/// whenever the kept singular vectors are linearly independent. With r = 0 (more experts than k)
/// FusionBench's Δ is zero, and so is this one.
/// </remarks>
public sealed class TsvMergeMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "tsv_m";

    /// <inheritdoc />
    public string Description => "TSV-M: per-task rank-k/T SVDs, concatenated and orthogonalised (Gargiulo et al.)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Float("alpha", 1.0, "scale of the merged task vector (FusionBench's scalar alpha)"),
        ParameterDef.Float("weight", 1.0, "scales τᵢ before the SVDs (FusionBench's list-valued alpha)", perModel: true),
        SpectralOps.ExcludeKeys,
        .. SpectralOps.ScalingFactor("multiplies alpha (the name the other spectral methods use)"),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        double scale = SpectralOps.Scale(g, "alpha", "scaling_factor", "lambda");
        double Weight(int i) => g.Float("weight", g.Experts[i].Model);
        if (!SpectralOps.IsSpectral(g))
            return TaskVectors.BasePlusMean(g, scale, Weight);

        var be = g.Backend;
        int m = g.Shape[0], n = g.Shape[1], k = Math.Min(m, n), tasks = g.Experts.Count;
        // FusionBench: reduced_index_s = int(s.shape[0] * (1 / len(task_vectors))), float64 arithmetic included.
        int r = (int)(k * (1.0 / tasks)), width = tasks * r;
        g.Diagnostics["rank_per_task"] = r;
        if (r == 0) return TaskVectors.AddToBase(g, be.Zeros(m, n), scale);

        using var uCat = be.Empty(m, width);
        using var sCat = be.Empty(width);
        using var vCat = be.Empty(width, n);
        for (int i = 0; i < tasks; i++)
        {
            using var tv = TaskVectors.Of(g, i, Weight(i));
            var (u, s, vt) = SpectralOps.Svd(be, tv);
            using (u)
            using (s)
            using (vt)
            {
                be.CopyBlock(u, 0, 0, uCat, 0, i * r, m, r);
                be.CopyBlock(s, 0, 0, sCat, 0, i * r, 1, r);
                be.CopyBlock(vt, 0, 0, vCat, i * r, 0, r, n);
            }
        }
        using var uOrth = SpectralOps.Orthogonalise(be, uCat);
        using var vOrth = SpectralOps.Orthogonalise(be, vCat);
        be.ScaleColumns(uOrth, sCat, uOrth);
        var delta = be.Empty(m, n);
        be.Gemm(uOrth, false, vOrth, false, delta);
        return TaskVectors.AddToBase(g, delta, scale);
    }
}
