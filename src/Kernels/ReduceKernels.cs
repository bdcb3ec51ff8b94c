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
    public static void SumPartials(ArrayView<float> x, ArrayView<double> partials) => ChunkSum<Identity>(x, partials);

    /// <summary>partials[g] ← Σ |x| over chunk g.</summary>
    public static void SumAbsPartials(ArrayView<float> x, ArrayView<double> partials) => ChunkSum<Magnitude>(x, partials);

    /// <summary>partials[g] ← Σ x² over chunk g (squares formed in float64).</summary>
    public static void SumSquaresPartials(ArrayView<float> x, ArrayView<double> partials) => ChunkSum<Square>(x, partials);

    /// <summary>The float64 term one element adds to a chunk sum; a struct so ILGPU inlines it.</summary>
    private interface ITerm
    {
        double Of(float v);
    }

    private readonly struct Identity : ITerm
    {
        public double Of(float v) => v;
    }

    private readonly struct Magnitude : ITerm
    {
        public double Of(float v) => v < 0f ? -v : v;
    }

    private readonly struct Square : ITerm
    {
        public double Of(float v)
        {
            double d = v;
            return d * d;
        }
    }

    /// <summary>partials[g] ← Σ TTerm(x) over chunk g: thread t adds elements t, t + DimX, … in order, then the group tree.</summary>
    private static void ChunkSum<TTerm>(ArrayView<float> x, ArrayView<double> partials) where TTerm : struct, ITerm
    {
        ChunkBounds(x, out int start, out int end);
        double acc = 0;
        for (int i = start + Group.IdxX; i < end; i += Group.DimX) acc += default(TTerm).Of(x[i]);
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
