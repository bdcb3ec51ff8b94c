using System.Runtime.Intrinsics;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>
/// Top-k by magnitude as a two-pass radix select on the bit pattern of |x| (16 high bits, then
/// 16 low bits): finds the k-th largest magnitude without sorting, then keeps everything above it
/// and the first ties in index order. Every pass is split over fixed chunks, so the result does not
/// depend on the thread count.
/// </summary>
internal static class MagnitudeSelect
{
    public static void KeepTopK(float[] x, long k, CpuBackend cpu)
    {
        if (k >= x.Length) return;
        if (k <= 0) { Array.Clear(x); return; }
        var (threshold, tiesToKeep, tiesTotal) = FindThreshold(x, k, cpu);
        if (tiesToKeep == tiesTotal)
        {
            cpu.ForEachChunk(x.Length, (_, o, n) => KeepAtLeast(x.AsSpan(o, n), threshold));
            return;
        }

        int chunks = CpuBackend.ChunkCount(x.Length);
        var ties = new long[chunks];
        cpu.ForEachChunk(x.Length, (c, o, n) =>
        {
            long t = 0;
            foreach (float v in x.AsSpan(o, n))
                if (Magnitude(v) == threshold) t++;
            ties[c] = t;
        });
        var tiesBefore = new long[chunks];
        for (int c = 1; c < chunks; c++) tiesBefore[c] = tiesBefore[c - 1] + ties[c - 1];

        cpu.ForEachChunk(x.Length, (c, o, n) =>
        {
            long rank = tiesBefore[c];
            var s = x.AsSpan(o, n);
            for (int i = 0; i < s.Length; i++)
            {
                uint m = Magnitude(s[i]);
                if (m > threshold) continue;
                if (m == threshold && rank++ < tiesToKeep) continue;
                s[i] = 0f;
            }
        });
    }

    /// <summary>Zeroes the elements whose magnitude key is below <paramref name="threshold"/>.</summary>
    private static void KeepAtLeast(Span<float> s, uint threshold)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var absMask = Vector256.Create(0x7FFF_FFFFu);
            var t = Vector256.Create(threshold);
            for (; i + 8 <= s.Length; i += 8)
            {
                var v = Vector256.Create(s.Slice(i, 8));
                var keep = Vector256.GreaterThanOrEqual(v.AsUInt32() & absMask, t);
                (v & keep.AsSingle()).CopyTo(s.Slice(i, 8));
            }
        }
        for (; i < s.Length; i++)
            if (Magnitude(s[i]) < threshold) s[i] = 0f;
    }

    private static void CountAll(ReadOnlySpan<float> s, int shift, int[] h)
    {
        foreach (float v in s) h[(int)((Magnitude(v) >> shift) & 0xFFFF)]++;
    }

    /// <summary>Counts the digits of the keys with (key &amp; mask) == match, skipping 16 keys at a time where none match.</summary>
    private static void CountMatching(ReadOnlySpan<float> s, int shift, uint mask, uint match, int[] h)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var m = Vector512.Create(mask & 0x7FFF_FFFF);
            var want = Vector512.Create(match);
            for (; i + 16 <= s.Length; i += 16)
            {
                var hit = Vector512.Equals(Vector512.Create(s.Slice(i, 16)).AsUInt32() & m, want);
                if (hit == Vector512<uint>.Zero) continue;
                for (int j = i; j < i + 16; j++)
                {
                    uint key = Magnitude(s[j]);
                    if ((key & mask) == match) h[(int)((key >> shift) & 0xFFFF)]++;
                }
            }
        }
        for (; i < s.Length; i++)
        {
            uint key = Magnitude(s[i]);
            if ((key & mask) == match) h[(int)((key >> shift) & 0xFFFF)]++;
        }
    }

    /// <summary>|x| as an order-preserving unsigned key; NaN ranks above every number, as in torch.</summary>
    public static uint Magnitude(float v) => BitConverter.SingleToUInt32Bits(v) & 0x7FFF_FFFF;

    /// <summary>
    /// The magnitude key t with count(&gt; t) &lt; k ≤ count(≥ t), how many elements equal to t the top k
    /// take, and how many there are.
    /// </summary>
    public static (uint Threshold, long TiesToKeep, long TiesTotal) FindThreshold(float[] data, long k, CpuBackend cpu)
    {
        long remaining = k;
        uint prefix = (uint)SelectKernels.DigitHoldingRank(Histogram(data, cpu, 16, 0, 0), ref remaining) << 16;
        var low = Histogram(data, cpu, 0, 0xFFFF_0000, prefix);
        int digit = SelectKernels.DigitHoldingRank(low, ref remaining);
        return (prefix | (uint)digit, remaining, low[digit]);
    }

    /// <summary>
    /// Counts of the 16-bit digit (key &gt;&gt; shift) &amp; 0xFFFF over keys with (key &amp; mask) == match,
    /// one histogram per worker partition (not per chunk) to keep the merge cheap.
    /// </summary>
    private static long[] Histogram(float[] data, CpuBackend cpu, int shift, uint mask, uint match)
    {
        int parts = Math.Max(1, Math.Min(cpu.Threads * 2, data.Length / CpuBackend.Chunk + 1));
        var partial = new int[parts][];
        long per = (data.Length + parts - 1) / parts;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = cpu.Threads }, p =>
        {
            int start = (int)Math.Min(data.Length, p * per), end = (int)Math.Min(data.Length, start + per);
            var h = new int[1 << 16];
            var s = data.AsSpan(start, end - start);
            if (mask == 0) CountAll(s, shift, h);
            else CountMatching(s, shift, mask, match, h);
            partial[p] = h;
        });
        var total = new long[1 << 16];
        foreach (var h in partial)
            for (int i = 0; i < h.Length; i++) total[i] += h[i];
        return total;
    }
}
