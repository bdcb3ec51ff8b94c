using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>Per-expert sign-election kernels (SCE) with their scalar rules shared by the CPU backend.</summary>
public static class ConsensusKernels
{
    /// <summary>True where x is non-zero and has the majority sign of total (+1 where total ≥ 0, else −1).</summary>
    public static bool AgreesWithMajority(float x, float total) => total >= 0 ? x > 0 : x < 0;

    /// <summary>numerator[i] += weight·x[i], denominator[i] += weight where <see cref="AgreesWithMajority"/>.</summary>
    public static void SignAgreeAccumulate(Index1D i, ArrayView<float> x, ArrayView<float> total, float weight, ArrayView<float> numerator, ArrayView<float> denominator)
    {
        float v = x[i];
        if (!AgreesWithMajority(v, total[i])) return;
        numerator[i] += v * weight;
        denominator[i] += weight;
    }

    /// <summary>numerator / max(denominator, floor).</summary>
    public static float DivClampedBelowValue(float numerator, float denominator, float floor) =>
        numerator / (denominator > floor ? denominator : floor);

    /// <summary>dst[i] ← <see cref="DivClampedBelowValue"/>(numerator[i], denominator[i], floor).</summary>
    public static void DivClampedBelow(Index1D i, ArrayView<float> numerator, ArrayView<float> denominator, float floor, ArrayView<float> dst) =>
        dst[i] = DivClampedBelowValue(numerator[i], denominator[i], floor);
}
