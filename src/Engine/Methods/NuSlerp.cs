using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// mergekit's <c>nuslerp</c>: spherical interpolation of exactly two models at t = w₁/(w₀ + w₁) (0.5 when
/// |w₀ + w₁| &lt; 1e-6), of the models themselves or, with a <c>base_model</c>, of their task vectors
/// (θ₀ + slerp(τ₀, τ₁)). The tensor is one vector (<c>nuslerp_flatten</c>, default), or each row of the
/// last dimension, or with <c>nuslerp_row_wise</c> each line along dimension 0; vectors with
/// |sin θ| &lt; 1e-8 are interpolated linearly.
/// </summary>
public sealed class NuSlerpMethod : IMergeMethod
{
    /// <summary>|sin θ| below which a pair of vectors counts as colinear (mergekit's eps).</summary>
    public const double ColinearSin = 1e-8;

    /// <summary>Smallest norm divided by when vectors are normalised (mergekit clamps norms at 1e-7).</summary>
    public const double NormFloor = 1e-7;

    /// <inheritdoc />
    public string Name => "nuslerp";

    /// <inheritdoc />
    public string Description => "slerp of two models (or of their task vectors with a base) at t = w₁/(w₀+w₁), whole tensor, rows or columns";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        new ParameterDef("weight", ParameterKind.Float, null, "per-model weight; t = w₁/(w₀ + w₁) (required)", PerModel: true),
        ParameterDef.Bool("nuslerp_row_wise", false, "interpolate the lines along dimension 0 (columns of a matrix) instead of the rows"),
        ParameterDef.Bool("nuslerp_flatten", true, "interpolate the whole tensor as one vector"),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => false;

    /// <inheritdoc />
    public bool DropsBaseFromModels => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        var be = g.Backend;
        var shape = g.Shape.ToArray();
        if (g.Experts.Count <= 1)
        {
            var only = be.Empty(shape);
            be.Copy(g.Experts.Count == 1 ? g.Experts[0].Values : g.Base!, only);
            return only;
        }
        if (g.Experts.Count != 2)
            throw new BadInputException($"tensor {g.Name}: nuslerp merges exactly two models besides the base_model, got {g.Experts.Count}");
        double w0 = g.Float("weight", g.Experts[0].Model), w1 = g.Float("weight", g.Experts[1].Model);
        double t = Math.Abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);

        var v0 = be.Empty(shape);
        var v1 = be.Empty(shape);
        try
        {
            if (g.Base is { } baseT)
            {
                be.Sub(g.Experts[0].Values, baseT, v0);
                be.Sub(g.Experts[1].Values, baseT, v1);
            }
            else
            {
                be.Copy(g.Experts[0].Values, v0);
                be.Copy(g.Experts[1].Values, v1);
            }
            var layout = VectorLayout(shape, g.Bool("nuslerp_flatten"), g.Bool("nuslerp_row_wise"));
            var (s0, s1) = Weights(be, v0, v1, t, layout);
            if (layout.Vectors == 1)
            {
                be.Scale(v0, (float)s0[0], v0);
                be.Axpy((float)s1[0], v1, v0);
            }
            else
            {
                using (var c0 = be.FromHost(PerElement(s0, layout, v0.Length), shape)) be.Mul(v0, c0, v0);
                using (var c1 = be.FromHost(PerElement(s1, layout, v1.Length), shape)) be.Mul(v1, c1, v1);
                be.Add(v0, v1, v0);
            }
            if (g.Base is { } b) be.Add(v0, b, v0);
            var result = v0;
            v0 = null!;
            return result;
        }
        finally
        {
            v0?.Dispose();
            v1.Dispose();
        }
    }

    /// <summary>How the tensor splits into vectors: <paramref name="Vectors"/> of <paramref name="Length"/> elements, strided along dimension 0 when <paramref name="AlongDim0"/>.</summary>
    private readonly record struct Layout(int Vectors, int Length, bool AlongDim0);

    private static Layout VectorLayout(int[] shape, bool flatten, bool rowWise)
    {
        int total = shape.Aggregate(1, (p, d) => p * d);
        if (flatten || shape.Length < 2) return new Layout(1, total, false);
        if (rowWise) return new Layout(shape[0] == 0 ? 0 : total / shape[0], shape[0], true);
        return new Layout(shape[^1] == 0 ? 0 : total / shape[^1], shape[^1], false);
    }

    /// <summary>The weights (s0, s1) of each vector's result s0·v0 + s1·v1, from float64 dot products.</summary>
    private static (double[] S0, double[] S1) Weights(IBackend be, Tensor v0, Tensor v1, double t, Layout layout)
    {
        int n = layout.Vectors;
        var (g00, g11, g01) = (new double[n], new double[n], new double[n]);
        if (!layout.AlongDim0)
        {
            if (n > 0)
            {
                var gram = new double[n * 4];
                be.BlockDot([v0, v1], [v0, v1], layout.Length, gram);
                for (int k = 0; k < n; k++) (g00[k], g01[k], g11[k]) = (gram[4 * k], gram[4 * k + 1], gram[4 * k + 3]);
            }
        }
        else
        {
            using var product = be.Empty(layout.Length, n);
            using var ones = be.FromHost(Enumerable.Repeat(1f, layout.Length).ToArray(), layout.Length);
            using var sums = be.Empty(n);
            var host = new float[n];
            foreach (var (x, y, dst) in new[] { (v0, v0, g00), (v1, v1, g11), (v0, v1, g01) })
            {
                be.Mul(x, y, product);
                be.Gemv(product, true, ones, sums);
                be.Download(sums, host);
                for (int k = 0; k < n; k++) dst[k] = host[k];
            }
        }
        var (s0, s1) = (new double[n], new double[n]);
        for (int k = 0; k < n; k++)
        {
            double cos = g01[k] / (Math.Max(Math.Sqrt(g00[k]), NormFloor) * Math.Max(Math.Sqrt(g11[k]), NormFloor));
            double theta = Math.Acos(Math.Clamp(cos, -1, 1)), sin = Math.Sin(theta);
            (s0[k], s1[k]) = Math.Abs(sin) < ColinearSin ? (1 - t, t) : (Math.Sin((1 - t) * theta) / sin, Math.Sin(t * theta) / sin);
        }
        return (s0, s1);
    }

    private static float[] PerElement(double[] weights, Layout layout, long length)
    {
        var a = new float[length];
        for (long e = 0; e < length; e++)
            a[e] = (float)weights[layout.AlongDim0 ? e % layout.Vectors : e / layout.Length];
        return a;
    }
}
