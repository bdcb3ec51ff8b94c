using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// Top-k by magnitude as a two-pass radix select on the |x| bit pattern, the twin of the CPU
/// backend's MagnitudeSelect: a histogram of the high 16 bits, then of the low 16 bits inside the
/// chosen high bin, give the k-th largest magnitude (the threshold) on the host. The mask pass keeps
/// everything above the threshold and exactly the first ties in flat index order: each chunk counts
/// its ties, the host turns the counts into a per-chunk allowance (an exclusive prefix over chunks),
/// and the chunk ranks its ties with an in-group scan, tile by tile in index order.
/// </summary>
public static class SelectKernels
{
    /// <summary>Bins of one 16-bit digit.</summary>
    public const int Bins = 1 << 16;

    /// <summary>
    /// Host step of the radix select: the highest digit whose bin, counted from the top, holds the
    /// element of rank <paramref name="remaining"/> (1-based); on return <paramref name="remaining"/>
    /// is that element's rank within the bin. Shared by the CPU twin and the device backend.
    /// </summary>
    public static int DigitHoldingRank(ReadOnlySpan<long> counts, ref long remaining)
    {
        int digit = counts.Length - 1;
        for (; digit > 0; digit--)
        {
            if (counts[digit] >= remaining) break;
            remaining -= counts[digit];
        }
        return digit;
    }

    /// <summary>Elements handled by one group in the chunked passes.</summary>
    public const int ChunkSize = ReduceKernels.ChunkSize;

    /// <summary>|v| as an order-preserving unsigned key (sign bit cleared); NaN ranks above every number.</summary>
    public static uint Magnitude(float v) => Interop.FloatAsInt(v) & 0x7FFF_FFFF;

    /// <summary>histogram[high 16 bits of |x[i]|] += 1.</summary>
    public static void HighDigitHistogram(Index1D i, ArrayView<float> x, ArrayView<int> histogram) =>
        Atomic.Add(ref histogram[(int)(Magnitude(x[i]) >> 16)], 1);

    /// <summary>histogram[low 16 bits of |x[i]|] += 1 for elements whose high 16 bits equal <paramref name="highPrefix"/>.</summary>
    public static void LowDigitHistogram(Index1D i, ArrayView<float> x, uint highPrefix, ArrayView<int> histogram)
    {
        uint m = Magnitude(x[i]);
        if ((m & 0xFFFF_0000) == highPrefix) Atomic.Add(ref histogram[(int)(m & 0xFFFF)], 1);
    }

    /// <summary>tieCounts[g] ← number of elements of chunk g whose magnitude equals <paramref name="threshold"/>. Grouped launch, one group per chunk.</summary>
    public static void CountTiesPerChunk(ArrayView<float> x, uint threshold, ArrayView<int> tieCounts)
    {
        int start = Grid.IdxX * ChunkSize, end = ChunkEnd(x, start);
        int count = 0;
        for (int i = start + Group.IdxX; i < end; i += Group.DimX)
            if (Magnitude(x[i]) == threshold) count++;
        count = GroupOps.Sum(count);
        if (Group.IsFirstThread) tieCounts[Grid.IdxX] = count;
    }

    /// <summary>
    /// Zeroes elements below the threshold and the ties of chunk g beyond the first
    /// tiesAllowed[g] in index order. Grouped launch, one group per chunk.
    /// </summary>
    public static void KeepAboveThreshold(ArrayView<float> x, uint threshold, ArrayView<int> tiesAllowed)
    {
        int start = Grid.IdxX * ChunkSize, end = ChunkEnd(x, start);
        int allowed = tiesAllowed[Grid.IdxX];
        int taken = 0;
        for (int tile = start; tile < end; tile += Group.DimX)
        {
            int i = tile + Group.IdxX;
            uint m = i < end ? Magnitude(x[i]) : 0;
            bool tie = i < end && m == threshold;
            int rank = GroupOps.ExclusiveScan(tie ? 1 : 0, out int tileTies);
            if (i < end && m <= threshold && !(tie && taken + rank < allowed)) x[i] = 0f;
            taken += tileTies;
        }
    }

    private static int ChunkEnd(ArrayView<float> x, int start)
    {
        int end = start + ChunkSize;
        return end > x.IntLength ? x.IntLength : end;
    }
}
