using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// Reductions in fixed chunks: group g reduces elements [g·<see cref="ChunkSize"/>, (g+1)·ChunkSize)
/// into partial g (float64 for sums), then one group combines the partials on the device
/// (<see cref="SumOfPartials"/>, <see cref="MaxOfPartials"/>), so a reduction downloads one scalar.
/// The chunking and the in-group trees are fixed, so results do not vary from run to run.
/// Launch with one group per chunk (one group for the second stage) and a power-of-two group size ≤ 256.
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

    /// <summary>
    /// result[0] ← Σ partials (the second stage of a sum, one group): thread t adds partials t, t + DimX, …
    /// in order, then the group tree adds the threads.
    /// </summary>
    public static void SumOfPartials(ArrayView<double> partials, ArrayView<double> result)
    {
        double acc = 0;
        for (int i = Group.IdxX; i < partials.IntLength; i += Group.DimX) acc += partials[i];
        acc = GroupOps.Sum(acc);
        if (Group.IsFirstThread) result[0] = acc;
    }

    /// <summary>result[0] ← max of the partials (the second stage of <see cref="MaxAbsBitsPartials"/>, one group).</summary>
    public static void MaxOfPartials(ArrayView<uint> partials, ArrayView<uint> result)
    {
        uint max = 0;
        for (int i = Group.IdxX; i < partials.IntLength; i += Group.DimX)
        {
            uint m = partials[i];
            if (m > max) max = m;
        }
        max = GroupOps.Max(max);
        if (Group.IsFirstThread) result[0] = max;
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

/// <summary>Layout of a <see cref="PairDotKernels.BlockPairDot"/> launch.</summary>
public struct BlockDotShape
{
    /// <summary>Number of stacked x vectors.</summary>
    public int Nx;
    /// <summary>Number of stacked y vectors.</summary>
    public int Ny;
    /// <summary>Elements per block.</summary>
    public int BlockLength;
    /// <summary>Elements per vector (the stride between stacked vectors).</summary>
    public long Length;
}

/// <summary>Dot products of every (x, y) pair per block, for AWD's per-row and per-tensor Grams.</summary>
public static class PairDotKernels
{
    /// <summary>
    /// Thread t = (block·Nx + i)·Ny + j writes Σ over the block's elements of xᵢ·yⱼ, accumulated in
    /// float64 in element order; x and y hold the vectors stacked with stride Length.
    /// </summary>
    public static void BlockPairDot(Index1D t, ArrayView<float> x, ArrayView<float> y, BlockDotShape s, ArrayView<double> dst)
    {
        int pair = t % (s.Nx * s.Ny), block = t / (s.Nx * s.Ny);
        int i = pair / s.Ny, j = pair % s.Ny;
        long xo = i * s.Length + (long)block * s.BlockLength, yo = j * s.Length + (long)block * s.BlockLength;
        double acc = 0;
        for (int e = 0; e < s.BlockLength; e++) acc += (double)x[xo + e] * y[yo + e];
        dst[t] = acc;
    }
}
