using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// Iso-CTS, isotropic merging in the common and task-specific subspaces (Marczak et al., ICML 2025),
/// as FusionBench's <c>ISO_CTS_Merge</c> computes it (<c>isotropic_merging/iso_utils.py</c> <c>iso_cts</c>).
/// For a 2-D tensor m×n, k = min(m,n), T experts:
/// <list type="number">
/// <item>common size c = int(k·<c>common_space_fraction</c>), then c = k − round((k − c)/T)·T (Python's
/// round, half to even) so the rest divides evenly; d = (k − c)/T directions per task;</item>
/// <item>the common subspace is the top c singular triplets of Σ τᵢ;</item>
/// <item>each task contributes the top d singular triplets of τᵢ − U_c·U_cᵀ·τᵢ (its residual outside the common subspace);</item>
/// <item>U = [task blocks | U_c] (m×k) and V = [task blocks; V_cᵀ] (k×n) are replaced by their orthogonal polar factors;</item>
/// <item>the spectrum is made isotropic: σ = mean of the k concatenated singular values (c of Σ τᵢ and
/// d per task from the residuals), Δ = σ·U_⊥·V_⊥.</item>
/// </list>
/// Other tensors and <c>exclude_keys</c> get the mean τ. θ = θ₀ + scaling_factor·Δ.
/// </summary>
/// <remarks>
/// For m ≤ n the residual's triplets come from the (m−c)×n coordinates of τᵢ in the complement
/// basis U[:, c:] of the (then square) U of Σ τᵢ, the same triplets as the m×n residual's SVD at a
/// fraction of the cost (ViT attention and fc2 matrices); taller matrices use FusionBench's form.
/// </remarks>
public sealed class IsoCtsMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "iso_cts";

    /// <inheritdoc />
    public string Description => "Iso-CTS: common + task-specific subspaces, orthogonalised, flat spectrum (Marczak et al.)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        .. SpectralOps.ScalingFactor("scale of the merged task vector"),
        ParameterDef.Float("common_space_fraction", 0.8, "fraction of min(m,n) given to the common subspace of Σ τᵢ", range: ParameterRange.Fraction),
        SpectralOps.ExcludeKeys,
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <summary>FusionBench's split of k directions over the common subspace and T tasks: (c, d) with c + T·d = k.</summary>
    public static (int Common, int PerTask) SubspaceSizes(int k, int tasks, double commonSpaceFraction)
    {
        int common = (int)(k * commonSpaceFraction);
        int taskTotal = (int)Math.Round((double)(k - common) / tasks, MidpointRounding.ToEven) * tasks;
        common = k - taskTotal;
        return (common, common < 0 ? 0 : (k - common) / tasks);
    }

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        double scale = SpectralOps.Scale(g, "scaling_factor", "lambda");
        if (!SpectralOps.IsSpectral(g))
            return TaskVectors.BasePlusMean(g, scale);

        var be = g.Backend;
        int m = g.Shape[0], n = g.Shape[1], k = Math.Min(m, n), tasks = g.Experts.Count;
        double fraction = g.Float("common_space_fraction");
        if (!(fraction >= 0 && fraction <= 1))
            throw new BadInputException($"tensor {g.Name}: common_space_fraction {fraction} is not in [0, 1]");
        var (c, d) = SubspaceSizes(k, tasks, fraction);
        if (c < 0)
            throw new BadInputException($"tensor {g.Name}: common_space_fraction {fraction} leaves a negative common subspace ({c}) for k = {k} and {tasks} experts");
        g.Diagnostics["common_rank"] = c;
        g.Diagnostics["rank_per_task"] = d;

        // When m ≤ n the thin SVD of Σ τᵢ has a square orthogonal U, so I − U_c·U_cᵀ = U_r·U_rᵀ with
        // U_r = U[:, c:], and the residual's SVD is U_r·SVD(U_rᵀ·τᵢ): an (m−c)×n problem instead of m×n.
        bool viaComplement = m <= n;
        int rest = viaComplement ? m - c : c;
        using var uCat = be.Empty(m, k);
        using var sCat = be.Empty(k);
        using var vCat = be.Empty(k, n);
        using var basis = be.Empty(m, rest);
        using (var sum = TaskVectors.Sum(g, mean: false))
        {
            var (u, s, vt) = SpectralOps.Svd(be, sum);
            using (u)
            using (s)
            using (vt)
            {
                be.CopyBlock(u, 0, viaComplement ? c : 0, basis, 0, 0, m, rest);
                be.CopyBlock(u, 0, 0, uCat, 0, tasks * d, m, c);
                be.CopyBlock(s, 0, 0, sCat, 0, tasks * d, 1, c);
                be.CopyBlock(vt, 0, 0, vCat, tasks * d, 0, c, n);
            }
        }
        for (int i = 0; i < tasks && d > 0; i++)
        {
            using var tv = TaskVectors.Of(g, i);
            if (viaComplement) AddComplementDirections(be, basis, tv, i, d, uCat, sCat, vCat);
            else AddResidualDirections(be, basis, tv, i, d, uCat, sCat, vCat);
        }
        double sigma = be.Sum(sCat) / k;
        g.Diagnostics["isotropic_sigma"] = sigma;
        using var uOrth = SpectralOps.Orthogonalise(be, uCat);
        using var vOrth = SpectralOps.Orthogonalise(be, vCat);
        var delta = be.Empty(m, n);
        be.Gemm(uOrth, false, vOrth, false, delta, (float)(scale * sigma));
        be.Add(g.Base!, delta, delta);
        return delta;
    }

    /// <summary>Task <paramref name="i"/>'s top d triplets of τ − U_c·U_cᵀ·τ (FusionBench's form) into slot i of the concatenation.</summary>
    private static void AddResidualDirections(ILinearAlgebraOps be, Tensor uCommon, Tensor tv, int i, int d, Tensor uCat, Tensor sCat, Tensor vCat)
    {
        if (uCommon.Cols > 0)
        {
            using var projection = be.Empty(uCommon.Cols, tv.Cols);
            be.Gemm(uCommon, true, tv, false, projection);
            be.Gemm(uCommon, false, projection, false, tv, -1f, 1f);
        }
        var (u, s, vt) = SpectralOps.Svd(be, tv);
        using (u)
        using (s)
        using (vt)
        {
            be.CopyBlock(u, 0, 0, uCat, 0, i * d, tv.Rows, d);
            be.CopyBlock(s, 0, 0, sCat, 0, i * d, 1, d);
            be.CopyBlock(vt, 0, 0, vCat, i * d, 0, d, tv.Cols);
        }
    }

    /// <summary>The same triplets through the complement basis U_r (m ≤ n): SVD(U_rᵀ·τ) = X·S·Wᵀ gives U_r·X, S, Wᵀ.</summary>
    private static void AddComplementDirections(ILinearAlgebraOps be, Tensor uRest, Tensor tv, int i, int d, Tensor uCat, Tensor sCat, Tensor vCat)
    {
        int m = tv.Rows, n = tv.Cols, r = uRest.Cols;
        using var coordinates = be.Empty(r, n);
        be.Gemm(uRest, true, tv, false, coordinates);
        var (x, s, vt) = SpectralOps.Svd(be, coordinates);
        using (x)
        using (s)
        using (vt)
        {
            using var xTop = be.Empty(r, d);
            using var uTop = be.Empty(m, d);
            be.CopyBlock(x, 0, 0, xTop, 0, 0, r, d);
            be.Gemm(uRest, false, xTop, false, uTop);
            be.CopyBlock(uTop, 0, 0, uCat, 0, i * d, m, d);
            be.CopyBlock(s, 0, 0, sCat, 0, i * d, 1, d);
            be.CopyBlock(vt, 0, 0, vCat, i * d, 0, d, n);
        }
    }
}
