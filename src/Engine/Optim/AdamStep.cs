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
/// p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + eps). Bias corrections are computed in float64 as
/// Python does, then used as float32 scalars.
/// </summary>
public static class AdamStep
{
    /// <summary>Scalars of step <paramref name="step"/> (1-based): (−step size, 1/√(1−β₂ᵗ)).</summary>
    public static (float NegStepSize, float InvBiasCorrection2Sqrt) Scalars(AdamSettings s, int step)
    {
        double bc1 = 1 - Math.Pow(s.Beta1, step), bc2 = 1 - Math.Pow(s.Beta2, step);
        return ((float)(-(s.Lr / bc1)), (float)(1 / Math.Sqrt(bc2)));
    }

    /// <summary>Applies step <paramref name="step"/> (1-based) to the elements of <paramref name="p"/>.</summary>
    public static void Apply(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, int step, AdamSettings s)
    {
        var (negStep, invBc2Sqrt) = Scalars(s, step);
        float oneMinusB1 = 1f - s.Beta1, oneMinusB2 = 1f - s.Beta2, decay = 1f - s.Lr * s.WeightDecay;
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
