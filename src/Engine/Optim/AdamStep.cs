namespace TaskMerge.Engine.Optim;

/// <summary>Hyper-parameters of one Adam/AdamW update, with torch.optim defaults.</summary>
/// <param name="Lr">Learning rate.</param>
/// <param name="Beta1">First-moment decay.</param>
/// <param name="Beta2">Second-moment decay.</param>
/// <param name="Eps">Added to the bias-corrected root of the second moment.</param>
/// <param name="WeightDecay">L2 penalty (Adam: added to the gradient) or decoupled decay (AdamW).</param>
/// <param name="Decoupled">True for AdamW: p ← p·(1 − lr·wd) before the Adam update.</param>
public sealed record AdamSettings(float Lr, float Beta1 = 0.9f, float Beta2 = 0.999f, float Eps = 1e-8f, float WeightDecay = 0f, bool Decoupled = false);

/// <summary>
/// The CPU twin of the fused Adam kernel: one step of torch.optim.Adam / AdamW (non-amsgrad,
/// maximize off) in torch's update order, per element, in float32:
/// g += wd·p (Adam) or p ·= 1 − lr·wd (AdamW); m ← m + (1−β₁)(g − m); v ← β₂v + (1−β₂)g²;
/// p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + eps). Bias corrections and 1 − β are computed in
/// float64 from the hyper-parameters as written (0.999, not the float 0.99900001), as Python does, then used as
/// float32 scalars (see <see cref="OneMinusBetas"/>).
/// </summary>
public static class AdamStep
{
    /// <summary>Scalars of step <paramref name="step"/> (1-based): (−step size, 1/√(1−β₂ᵗ)).</summary>
    public static (float NegStepSize, float InvBiasCorrection2Sqrt) Scalars(AdamSettings s, int step)
    {
        double bc1 = 1 - Math.Pow(AsWritten(s.Beta1), step), bc2 = 1 - Math.Pow(AsWritten(s.Beta2), step);
        return ((float)(-(AsWritten(s.Lr) / bc1)), (float)(1 / Math.Sqrt(bc2)));
    }

    /// <summary>
    /// The float32 scalars 1 − β₁ and 1 − β₂ that torch passes to <c>lerp_</c> and <c>addcmul_</c>:
    /// the difference is taken in float64 from the decimal value the user wrote (0.999, not the float
    /// 0.99900001) and then rounded once. Subtracting in float32 instead (1f − 0.999f) is off by
    /// 1.3e-5 relative, a systematic bias in v.
    /// </summary>
    public static (float OneMinusBeta1, float OneMinusBeta2) OneMinusBetas(AdamSettings s) =>
        ((float)(1 - AsWritten(s.Beta1)), (float)(1 - AsWritten(s.Beta2)));

    /// <summary>
    /// The float64 a hyper-parameter was written as: float → decimal keeps 7 significant digits, so
    /// 0.999f → 0.999. Values outside decimal's comfortable range are widened as they are.
    /// </summary>
    private static double AsWritten(float value) =>
        value == 0f || !float.IsFinite(value) || Math.Abs(value) is < 1e-20f or > 1e20f ? value : (double)(decimal)value;

    /// <summary>Applies step <paramref name="step"/> (1-based) to the elements of <paramref name="p"/>.</summary>
    public static void Apply(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, int step, AdamSettings s)
    {
        var (negStep, invBc2Sqrt) = Scalars(s, step);
        var (oneMinusB1, oneMinusB2) = OneMinusBetas(s);
        float decay = 1f - s.Lr * s.WeightDecay;
        for (int i = 0; i < p.Length; i++)
        {
            float grad = g[i];
            if (s.WeightDecay != 0f)
            {
                if (s.Decoupled) p[i] *= decay;
                else grad += s.WeightDecay * p[i];
            }
            float mi = m[i] + oneMinusB1 * (grad - m[i]);
            float vi = v[i] * s.Beta2 + oneMinusB2 * grad * grad;
            m[i] = mi;
            v[i] = vi;
            float denom = MathF.Sqrt(vi) * invBc2Sqrt + s.Eps;
            p[i] += negStep * (mi / denom);
        }
    }
}
