using System.Text.RegularExpressions;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// What the SVD-based methods (<c>tsv_m</c>, <c>iso_c</c>, <c>iso_cts</c>) share, written against
/// <see cref="IBackend"/> ops only: which tensors are merged spectrally, task vectors and their mean,
/// thin SVD, orthogonalisation (the orthogonal polar factor), and θ₀ + scale·Δ.
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
    /// gets the mean task vector, as in FusionBench.
    /// </summary>
    public static bool IsSpectral(TensorGroup g)
    {
        var shape = g.Shape;
        if (shape.Length != 2 || shape[0] == 0 || shape[1] == 0) return false;
        foreach (string pattern in g.Parameters.List("exclude_keys"))
            if (KeyPatterns.IsMatch(KeyPatterns.Compile(pattern), g.Name)) return false;
        return true;
    }

    /// <summary>τᵢ = weight·(θᵢ − θ₀) for expert <paramref name="i"/> of the group (a new tensor).</summary>
    public static Tensor TaskVector(TensorGroup g, int i, double weight = 1.0)
    {
        var be = g.Backend;
        var baseT = g.Base ?? throw new InvalidOperationException($"tensor {g.Name}: spectral merging needs a base tensor");
        var tv = be.Empty(baseT.Shape.ToArray());
        be.Sub(g.Experts[i].Values, baseT, tv);
        if (weight != 1.0) be.Scale(tv, (float)weight, tv);
        return tv;
    }

    /// <summary>Σᵢ wᵢτᵢ, divided by the number of experts when <paramref name="mean"/>.</summary>
    public static Tensor CombinedTaskVector(TensorGroup g, bool mean, Func<int, double>? weight = null)
    {
        var be = g.Backend;
        var total = be.Zeros(g.Shape.ToArray());
        for (int i = 0; i < g.Experts.Count; i++)
        {
            using var tv = TaskVector(g, i, weight?.Invoke(i) ?? 1.0);
            be.Add(total, tv, total);
        }
        if (mean && g.Experts.Count > 0) be.Scale(total, 1f / g.Experts.Count, total);
        return total;
    }

    /// <summary>Thin SVD of a 2-D tensor into new tensors (see <see cref="IBackend.Svd"/>).</summary>
    public static (Tensor U, Tensor S, Tensor Vt) Svd(IBackend be, Tensor a)
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
    public static Tensor Orthogonalise(IBackend be, Tensor x)
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

    /// <summary>Turns <paramref name="delta"/> in place into θ₀ + scale·Δ and returns it.</summary>
    public static Tensor ApplyToBase(TensorGroup g, Tensor delta, double scale)
    {
        var be = g.Backend;
        if (scale != 1.0) be.Scale(delta, (float)scale, delta);
        be.Add(g.Base!, delta, delta);
        return delta;
    }
}
