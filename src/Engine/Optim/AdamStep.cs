using TaskMerge.Kernels;

namespace TaskMerge.Engine.Optim;

/// <summary>Hyper-parameters of one Adam/AdamW update, with torch.optim defaults.</summary>
/// <param name="Lr">Learning rate.</param>
/// <param name="Beta1">First-moment decay.</param>
/// <param name="Beta2">Second-moment decay.</param>
/// <param name="Eps">Added to the bias-corrected root of the second moment.</param>
/// <param name="WeightDecay">L2 penalty (Adam: added to the gradient) or decoupled decay (AdamW).</param>
/// <param name="Decoupled">True for AdamW: p ← p·(1 − lr·wd) before the Adam update.</param>
public sealed record AdamSettings(float Lr, float Beta1 = 0.9f, float Beta2 = 0.999f, float Eps = 1e-8f, float WeightDecay = 0f, bool Decoupled = false)
{
    /// <summary>The per-step scalars shared by the device kernel and the CPU twin.</summary>
    public AdamScalars Scalars(int step) => new(step, Lr, Beta1, Beta2, Eps, WeightDecay, Decoupled);
}

/// <summary>
/// One step of torch.optim.Adam / AdamW (non-amsgrad) on the host: the CPU twin of
/// <see cref="OptimKernels.AdamStep"/>, same formula and scalars (<see cref="AdamScalars"/>):
/// p ·= 1 − lr·wd (AdamW) or g += wd·p (Adam); m = lerp(m, g, 1−β1); v = β2·v + (1−β2)·g²;
/// p += −(lr/(1−β1ᵗ))·(m / (√v/√(1−β2ᵗ) + ε)) — torch's default (foreach) operation order.
/// </summary>
public static class AdamStep
{
    /// <summary>
    /// Updates <paramref name="p"/>, <paramref name="m"/> and <paramref name="v"/> in place for step
    /// <paramref name="step"/> (1 for the first step; m and v start at zero).
    /// </summary>
    public static void Apply(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, int step, AdamSettings settings)
    {
        if (g.Length != p.Length || m.Length != p.Length || v.Length != p.Length)
            throw new ArgumentException($"Adam: lengths differ (p {p.Length}, g {g.Length}, m {m.Length}, v {v.Length})");
        var s = settings.Scalars(step);
        for (int i = 0; i < p.Length; i++)
        {
            if (s.ParamDecay != 1f) p[i] *= s.ParamDecay;
            float grad = g[i];
            if (s.WeightDecay != 0f) grad += s.WeightDecay * p[i];
            m[i] += s.OneMinusBeta1 * (grad - m[i]);
            v[i] = s.Beta2 * v[i] + s.OneMinusBeta2 * grad * grad;
            float denom = MathF.Sqrt(v[i]) / s.BiasCorrection2Sqrt + s.Eps;
            p[i] += -s.StepSize * (m[i] / denom);
        }
    }
}
