using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// Spherical linear interpolation from the base model (t = 0) to the one other model (t = 1), each tensor
/// flattened into one vector; mergekit's <c>slerp</c>. Vectors whose normalised dot product exceeds 0.9995
/// in magnitude (colinear or antipodal) are interpolated linearly instead.
/// </summary>
public sealed class SlerpMethod : IMergeMethod
{
    /// <summary>|cos θ| above which the two tensors count as colinear and are lerped (mergekit's DOT_THRESHOLD).</summary>
    public const double ColinearDot = 0.9995;

    /// <summary>Norms at or below this are not divided out before the dot product (mergekit's eps).</summary>
    public const double NormEpsilon = 1e-8;

    /// <inheritdoc />
    public string Name => "slerp";

    /// <inheritdoc />
    public string Description => "spherical interpolation base → other model by t (lerp when |cos θ| > 0.9995)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        new ParameterDef("t", ParameterKind.Float, null, "interpolation factor: 0 = base_model, 1 = the other model (required; gradients and filters allowed)"),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        var be = g.Backend;
        var a = g.Base ?? throw new InvalidOperationException("slerp needs a base tensor");
        var result = be.Empty(a.Shape.ToArray());
        if (g.Experts.Count == 0)
        {
            be.Copy(a, result);
            return result;
        }
        if (g.Experts.Count != 1)
        {
            result.Dispose();
            throw new BadInputException($"tensor {g.Name}: slerp merges exactly two models (base_model and one other), got {g.Experts.Count + 1}");
        }
        var b = g.Experts[0].Values;
        var (s0, s1) = Coefficients(g.Float("t"), Math.Sqrt(be.SumSquares(a)), Math.Sqrt(be.SumSquares(b)), be.Dot(a, b));
        be.Scale(a, (float)s0, result);
        be.Axpy((float)s1, b, result);
        return result;
    }

    /// <summary>
    /// The weights (s0, s1) of result = s0·a + s1·b from ‖a‖, ‖b‖ and a·b. A norm ≤ <see cref="NormEpsilon"/>
    /// is left undivided, as mergekit's <c>normalize</c> leaves such a vector as it is.
    /// </summary>
    internal static (double S0, double S1) Coefficients(double t, double normA, double normB, double dot)
    {
        double cos = dot / (normA > NormEpsilon ? normA : 1) / (normB > NormEpsilon ? normB : 1);
        if (Math.Abs(cos) > ColinearDot) return (1 - t, t);
        double theta = Math.Acos(cos), sin = Math.Sin(theta);
        return (Math.Sin(theta - theta * t) / sin, Math.Sin(theta * t) / sin);
    }
}
