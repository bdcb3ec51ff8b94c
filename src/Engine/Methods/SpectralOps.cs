using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// What the SVD-based methods (<c>tsv_m</c>, <c>iso_c</c>, <c>iso_cts</c>) share, written against
/// backend ops only: which tensors are merged spectrally, thin SVD and orthogonalisation (the
/// orthogonal polar factor). Task vectors, their mean and θ₀ + scale·Δ are <see cref="TaskVectors"/>.
/// </summary>
internal static class SpectralOps
{
    /// <summary>The <c>exclude_keys</c> parameter, as FusionBench names it.</summary>
    public static ParameterDef ExcludeKeys { get; } = ParameterDef.List("exclude_keys",
        "2-D tensors whose name matches one of these regexes (an exact FusionBench key matches itself) get the mean τ instead");

    /// <summary><c>scaling_factor</c> and its <c>lambda</c> alias; the merged task vector is multiplied by both.</summary>
    public static IReadOnlyList<ParameterDef> ScalingFactor(string doc) =>
    [
        ParameterDef.Float("scaling_factor", 1.0, doc),
        ParameterDef.Float("lambda", 1.0, "alias of scaling_factor (mergekit's name); the two multiply when both are given"),
    ];

    /// <summary>The product of the named scale parameters for this tensor.</summary>
    public static double Scale(TensorGroup g, params string[] names)
    {
        double scale = 1.0;
        foreach (string n in names) scale *= g.Float(n);
        return scale;
    }

    /// <summary>
    /// True when the group is merged through SVDs: a 2-D tensor with no zero dimension whose name no
    /// <c>exclude_keys</c> pattern matches. Everything else (biases, norms, conv kernels, excluded keys)
    /// gets the mean task vector (<see cref="TaskVectors.BasePlusMean"/>), as in FusionBench.
    /// </summary>
    public static bool IsSpectral(TensorGroup g) => TaskVectors.IsIncludedMatrix(g.Name, g.Shape, TaskVectors.ExcludeKeys(g.Parameters));

    /// <summary>Thin SVD of a 2-D tensor into new tensors (see <see cref="ILinearAlgebraOps.Svd"/>).</summary>
    public static (Tensor U, Tensor S, Tensor Vt) Svd(ILinearAlgebraOps be, Tensor a)
    {
        int m = a.Rows, n = a.Cols, k = Math.Min(m, n);
        var u = be.Empty(m, k);
        var s = be.Empty(k);
        var vt = be.Empty(k, n);
        be.Svd(a, u, s, vt);
        return (u, s, vt);
    }

    /// <summary>
    /// The orthogonal polar factor X·Yᵀ of x = X·Σ·Yᵀ (thin SVD): the matrix with orthonormal columns
    /// (or rows, for a wide x) nearest to x in Frobenius norm, i.e. the Procrustes solution. This is
    /// the "U_u @ V_u" orthogonalisation of TSV-M and Iso-CTS. A new tensor of x's shape.
    /// </summary>
    public static Tensor Orthogonalise(ILinearAlgebraOps be, Tensor x)
    {
        var (u, s, vt) = Svd(be, x);
        using (u)
        using (s)
        using (vt)
        {
            var p = be.Empty(x.Rows, x.Cols);
            be.Gemm(u, false, vt, false, p);
            return p;
        }
    }
}
