using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// RAM (Reinforced Agent Merging) per-element kernels, one expert per launch, with their scalar rules
/// shared by the CPU backend: a task-vector entry contributes when |τ| &gt; ε; entries no other expert
/// shares are kept (scaled), shared ones are averaged over their contributors.
/// </summary>
public static class RamKernels
{
    /// <summary>The contribution of one entry τ to the merged value, given the element's contributor count.</summary>
    public static float ContributionValue(float tau, float epsilon, float count, float uniqueScale)
    {
        float magnitude = tau < 0 ? -tau : tau;
        if (!(magnitude > epsilon)) return 0;
        return count == 1 ? tau * uniqueScale : tau / (count > 1 ? count : 1);
    }

    /// <summary>counts[i] += 1 where |x[i]| &gt; threshold.</summary>
    public static void CountMagnitudeAbove(Index1D i, ArrayView<float> x, float threshold, ArrayView<float> counts)
    {
        float v = x[i];
        if ((v < 0 ? -v : v) > threshold) counts[i] += 1;
    }

    /// <summary>dst[i] += <see cref="ContributionValue"/>(τ[i], ε, counts[i], uniqueScale).</summary>
    public static void Accumulate(Index1D i, ArrayView<float> tau, float epsilon, ArrayView<float> counts, float uniqueScale, ArrayView<float> dst) =>
        dst[i] += ContributionValue(tau[i], epsilon, counts[i], uniqueScale);

    /// <summary>unique[i] ← 1 where τ[i] contributes alone, shared[i] ← 1 where it contributes with others; else 0.</summary>
    public static void Classify(Index1D i, ArrayView<float> tau, float epsilon, ArrayView<float> counts, ArrayView<float> unique, ArrayView<float> shared)
    {
        float v = tau[i];
        bool contributes = (v < 0 ? -v : v) > epsilon;
        unique[i] = contributes && counts[i] == 1 ? 1 : 0;
        shared[i] = contributes && counts[i] > 1 ? 1 : 0;
    }
}
