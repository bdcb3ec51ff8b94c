using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// Up to <see cref="Capacity"/> expert tensors passed to one kernel launch. More experts are
/// handled in consecutive launches that carry the running sums in device memory, which keeps the
/// float32 summation order over k sequential, exactly as the CPU twin.
/// </summary>
public struct ExpertViews
{
    /// <summary>Experts per launch.</summary>
    public const int Capacity = 8;

    /// <summary>Expert slots; slots at or beyond the launch's count are never read.</summary>
    public ArrayView<float> E0, E1, E2, E3, E4, E5, E6, E7;

    /// <summary>Expert <paramref name="j"/> of this launch.</summary>
    public readonly ArrayView<float> Get(int j) => j switch
    {
        0 => E0, 1 => E1, 2 => E2, 3 => E3, 4 => E4, 5 => E5, 6 => E6, _ => E7,
    };
}

/// <summary>Which slice of the experts a sign-consensus launch covers (ints: kernel parameters must be blittable).</summary>
public struct ConsensusPass
{
    /// <summary>Experts in this launch (≤ <see cref="ExpertViews.Capacity"/>).</summary>
    public int Count;
    /// <summary>Non-zero for the first launch: the running sums start from zero.</summary>
    public int First;
    /// <summary>Non-zero for the last launch: a zero divisor becomes 1.</summary>
    public int Last;
}

/// <summary>
/// TIES "sum" sign election and disjoint merge, the twin of CpuKernels.SignConsensus:
/// total = Σₖ weightedₖ (float32, k ascending), majority = +1 where total ≥ 0 else −1,
/// mixed = Σₖ weightedₖ where sign(weightedₖ) = majority, divisor = Σₖ weightₖ likewise (0 → 1).
/// </summary>
public static class TiesKernels
{
    /// <summary>total[i] ← (first pass ? 0 : total[i]) + Σⱼ experts[j][i], j ascending.</summary>
    public static void AccumulateTotal(Index1D i, ExpertViews experts, ConsensusPass pass, ArrayView<float> total)
    {
        float t = pass.First != 0 ? 0f : total[i];
        for (int j = 0; j < pass.Count; j++) t += experts.Get(j)[i];
        total[i] = t;
    }

    /// <summary>
    /// Adds this launch's experts that agree with the sign of total[i] to mixed[i], and their
    /// weights (weights[j] for expert j of the launch) to divisor[i]; the last launch turns a zero divisor into 1.
    /// </summary>
    public static void MergeAgreeing(Index1D i, ExpertViews experts, ConsensusPass pass, ArrayView<float> weights,
        ArrayView<float> total, ArrayView<float> mixed, ArrayView<float> divisor)
    {
        float majority = total[i] >= 0f ? 1f : -1f;
        bool first = pass.First != 0;
        float m = first ? 0f : mixed[i], d = first ? 0f : divisor[i];
        for (int j = 0; j < pass.Count; j++)
        {
            float v = experts.Get(j)[i];
            if (Sign(v) == majority)
            {
                m += v;
                d += weights[j];
            }
        }
        mixed[i] = m;
        divisor[i] = pass.Last != 0 && d == 0f ? 1f : d;
    }

    private static float Sign(float v) => v > 0f ? 1f : v < 0f ? -1f : 0f;
}
