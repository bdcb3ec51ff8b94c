using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// Reductions in fixed chunks: group g reduces elements [g·<see cref="ChunkSize"/>, (g+1)·ChunkSize)
/// into partial g (float64 for sums), and the host adds the partials in chunk order. The chunking
/// and the in-group tree are fixed, so results do not vary from run to run.
/// Launch with one group per chunk and a power-of-two group size ≤ 256.
/// </summary>
public static class ReduceKernels
{
    /// <summary>Elements reduced by one group.</summary>
    public const int ChunkSize = 1 << 14;

    /// <summary>Largest group size of the grouped reduction and select kernels (a power of two).</summary>
    public const int MaxGroupSize = GroupOps.MaxGroupSize;

    /// <summary>Number of chunks (= groups = partials) for <paramref name="length"/> elements.</summary>
    public static int ChunkCount(long length) => (int)((length + ChunkSize - 1) / ChunkSize);

    /// <summary>partials[g] ← Σ x over chunk g.</summary>
    public static void SumPartials(ArrayView<float> x, ArrayView<double> partials)
    {
        ChunkBounds(x, out int start, out int end);
        double acc = 0;
        for (int i = start + Group.IdxX; i < end; i += Group.DimX) acc += x[i];
        Store(partials, GroupOps.Sum(acc));
    }

    /// <summary>partials[g] ← Σ |x| over chunk g.</summary>
    public static void SumAbsPartials(ArrayView<float> x, ArrayView<double> partials)
    {
        ChunkBounds(x, out int start, out int end);
        double acc = 0;
        for (int i = start + Group.IdxX; i < end; i += Group.DimX)
        {
            float v = x[i];
            acc += v < 0f ? -v : v;
        }
        Store(partials, GroupOps.Sum(acc));
    }

    /// <summary>partials[g] ← Σ x² over chunk g (squares formed in float64).</summary>
    public static void SumSquaresPartials(ArrayView<float> x, ArrayView<double> partials)
    {
        ChunkBounds(x, out int start, out int end);
        double acc = 0;
        for (int i = start + Group.IdxX; i < end; i += Group.DimX)
        {
            double v = x[i];
            acc += v * v;
        }
        Store(partials, GroupOps.Sum(acc));
    }

    /// <summary>partials[g] ← Σ a·b over chunk g (products formed in float64).</summary>
    public static void DotPartials(ArrayView<float> a, ArrayView<float> b, ArrayView<double> partials)
    {
        ChunkBounds(a, out int start, out int end);
        double acc = 0;
        for (int i = start + Group.IdxX; i < end; i += Group.DimX) acc += (double)a[i] * b[i];
        Store(partials, GroupOps.Sum(acc));
    }

    /// <summary>
    /// partials[g] ← max over chunk g of the |x| bit pattern (sign bit cleared). Comparing the bits
    /// as unsigned integers orders magnitudes exactly and ranks NaN above every number.
    /// </summary>
    public static void MaxAbsBitsPartials(ArrayView<float> x, ArrayView<uint> partials)
    {
        ChunkBounds(x, out int start, out int end);
        uint max = 0;
        for (int i = start + Group.IdxX; i < end; i += Group.DimX)
        {
            uint m = Interop.FloatAsInt(x[i]) & 0x7FFF_FFFF;
            if (m > max) max = m;
        }
        max = GroupOps.Max(max);
        if (Group.IsFirstThread) partials[Grid.IdxX] = max;
    }

    private static void ChunkBounds(ArrayView<float> x, out int start, out int end)
    {
        start = Grid.IdxX * ChunkSize;
        end = start + ChunkSize;
        if (end > x.IntLength) end = x.IntLength;
    }

    private static void Store(ArrayView<double> partials, double value)
    {
        if (Group.IsFirstThread) partials[Grid.IdxX] = value;
    }
}
