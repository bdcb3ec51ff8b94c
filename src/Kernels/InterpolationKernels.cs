using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>Per-element interpolation kernels with their scalar rule shared by the CPU backend.</summary>
public static class InterpolationKernels
{
    /// <summary>Smallest |a − b| NearSwap divides by (mergekit's clamp(min=1e-6)).</summary>
    public const float NearSwapFloor = 1e-6f;

    /// <summary>
    /// NearSwap of one element: w = clamp(t / max(|a − b|, 1e-6), 0, 1), result w·b + (1 − w)·a, so elements
    /// closer than t take b and the others move t towards it.
    /// </summary>
    public static float NearSwapValue(float a, float b, float t)
    {
        float diff = a - b;
        float distance = diff < 0 ? -diff : diff;
        float w = t / (distance > NearSwapFloor ? distance : NearSwapFloor);
        w = w < 0 ? 0 : w > 1 ? 1 : w;
        return w * b + (1 - w) * a;
    }

    /// <summary>dst[i] ← <see cref="NearSwapValue"/>(a[i], b[i], t).</summary>
    public static void NearSwap(Index1D i, ArrayView<float> a, ArrayView<float> b, float t, ArrayView<float> dst) =>
        dst[i] = NearSwapValue(a[i], b[i], t);
}
