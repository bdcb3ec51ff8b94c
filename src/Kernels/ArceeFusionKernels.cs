using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// Arcee Fusion's importance score, one thread per row of the last dimension (O(row) work per thread),
/// beside its CPU twin in CpuBackend: importance = |tuned − base|·KL(p ‖ q) with p = softmax(tuned row) + 1e-8,
/// q = softmax(base row) + 1e-8, the sums in float64.
/// </summary>
public static class ArceeFusionKernels
{
    /// <summary>Added to both softmaxes before the KL divergence (mergekit's eps).</summary>
    public const double SoftmaxEpsilon = 1e-8;

    /// <summary>Row <paramref name="row"/> of the importance of <paramref name="tuned"/> against <paramref name="based"/>.</summary>
    public static void Importance(Index1D row, ArrayView<float> tuned, ArrayView<float> based, int rowLength, ArrayView<float> dst)
    {
        long o = (long)(int)row * rowLength;
        float maxT = tuned[o], maxB = based[o];
        for (int j = 1; j < rowLength; j++)
        {
            if (tuned[o + j] > maxT) maxT = tuned[o + j];
            if (based[o + j] > maxB) maxB = based[o + j];
        }
        double sumT = 0, sumB = 0;
        for (int j = 0; j < rowLength; j++)
        {
            sumT += NnMath.Exp(tuned[o + j] - maxT);
            sumB += NnMath.Exp(based[o + j] - maxB);
        }
        double kl = 0;
        for (int j = 0; j < rowLength; j++)
        {
            double p = NnMath.Exp(tuned[o + j] - maxT) / sumT + SoftmaxEpsilon;
            double q = NnMath.Exp(based[o + j] - maxB) / sumB + SoftmaxEpsilon;
            kl += p * RandomKernels.Log(p / q);
        }
        for (int j = 0; j < rowLength; j++)
        {
            float d = tuned[o + j] - based[o + j];
            dst[o + j] = (d < 0 ? -d : d) * (float)kl;
        }
    }
}
