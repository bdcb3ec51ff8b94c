using TaskMerge.Kernels;

namespace TaskMerge.Engine.Optim;

/// <summary>
/// One step of torch.optim.Adam (non-amsgrad) on the host, the CPU twin of
/// <see cref="OptimKernels.AdamStep"/>. Same update order as torch's fused Adam:
/// g += wd·p (L2, when wd ≠ 0); m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g·g;
/// p −= (lr/(1−β1ᵗ))·m / (sqrt(v)/sqrt(1−β2ᵗ) + ε).
/// </summary>
public static class AdamStep
{
    /// <summary>
    /// Updates <paramref name="p"/>, <paramref name="m"/> and <paramref name="v"/> in place for step
    /// <paramref name="step"/> (1 for the first step; m and v start at zero).
    /// </summary>
    public static void Apply(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v,
        int step, float lr, float beta1, float beta2, float eps, float weightDecay)
    {
        if (g.Length != p.Length || m.Length != p.Length || v.Length != p.Length)
            throw new ArgumentException($"Adam: lengths differ (p {p.Length}, g {g.Length}, m {m.Length}, v {v.Length})");
        var s = new AdamScalars(step, lr, beta1, beta2, eps, weightDecay);
        for (int i = 0; i < p.Length; i++)
        {
            float grad = g[i];
            if (s.WeightDecay != 0f) grad += s.WeightDecay * p[i];
            m[i] = s.Beta1 * m[i] + s.OneMinusBeta1 * grad;
            v[i] = s.Beta2 * v[i] + s.OneMinusBeta2 * grad * grad;
            float denom = MathF.Sqrt(v[i]) / s.BiasCorrection2Sqrt + s.Eps;
            p[i] -= s.StepSize * m[i] / denom;
        }
    }
}
