using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// The per-step scalars of one Adam step, formed once on the host. torch holds hyper-parameters
/// as Python floats (float64), so 1 − β, the bias corrections and the step size are formed in
/// float64 from the decimal the user wrote — recovered as the float's shortest round-trip form, so
/// β2 = 0.999f gives 1 − β2 = 0.001 rather than 1 − 0.99900001287 — and rounded to float32 once.
/// </summary>
public readonly struct AdamScalars
{
    /// <summary>β1.</summary>
    public readonly float Beta1;
    /// <summary>1 − β1.</summary>
    public readonly float OneMinusBeta1;
    /// <summary>β2.</summary>
    public readonly float Beta2;
    /// <summary>1 − β2.</summary>
    public readonly float OneMinusBeta2;
    /// <summary>lr / (1 − β1ᵗ).</summary>
    public readonly float StepSize;
    /// <summary>sqrt(1 − β2ᵗ).</summary>
    public readonly float BiasCorrection2Sqrt;
    /// <summary>ε added to the denominator.</summary>
    public readonly float Eps;
    /// <summary>L2 penalty folded into the gradient (g += wd·p, Adam); 0 for none or for AdamW.</summary>
    public readonly float WeightDecay;
    /// <summary>Decoupled decay factor 1 − lr·wd applied to p first (AdamW); 1 for Adam.</summary>
    public readonly float ParamDecay;

    /// <summary>The scalars of step <paramref name="step"/> (1-based); <paramref name="decoupled"/> selects AdamW.</summary>
    public AdamScalars(int step, float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled = false)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "Adam steps count from 1");
        double b1 = AsWritten(beta1), b2 = AsWritten(beta2);
        Beta1 = beta1;
        OneMinusBeta1 = (float)(1.0 - b1);
        Beta2 = beta2;
        OneMinusBeta2 = (float)(1.0 - b2);
        StepSize = (float)(AsWritten(lr) / (1.0 - Math.Pow(b1, step)));
        BiasCorrection2Sqrt = (float)Math.Sqrt(1.0 - Math.Pow(b2, step));
        Eps = eps;
        WeightDecay = decoupled ? 0f : weightDecay;
        ParamDecay = decoupled ? (float)(1.0 - AsWritten(lr) * AsWritten(weightDecay)) : 1f;
    }

    private static double AsWritten(float value) =>
        double.Parse(value.ToString(System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Fused optimizer steps, one thread per parameter; the CPU twin is the engine's AdamStep.</summary>
public static class OptimKernels
{
    /// <summary>
    /// torch.optim.Adam/AdamW (non-amsgrad) on element i: p ·= 1 − lr·wd (AdamW) or g += wd·p (Adam);
    /// m = lerp(m, g, 1−β1); v = β2·v + (1−β2)·g·g; p += −step_size·(m / (sqrt(v)/sqrt(1−β2ᵗ) + ε)),
    /// the operation order of torch's default (foreach) implementation.
    /// </summary>
    public static void AdamStep(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamScalars s)
    {
        if (s.ParamDecay != 1f) p[i] *= s.ParamDecay;
        float grad = g[i];
        if (s.WeightDecay != 0f) grad += s.WeightDecay * p[i];
        float mi = m[i] + s.OneMinusBeta1 * (grad - m[i]);
        float vi = s.Beta2 * v[i] + s.OneMinusBeta2 * grad * grad;
        m[i] = mi;
        v[i] = vi;
        float denom = MathF.Sqrt(vi) / s.BiasCorrection2Sqrt + s.Eps;
        p[i] += -s.StepSize * (mi / denom);
    }
}
