namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>
/// Top-k by magnitude as a two-pass radix select on the bit pattern of |x| (16 high bits, then
/// 16 low bits): finds the k-th largest magnitude without sorting, then keeps everything above it
/// and the first ties in index order.
/// </summary>
internal static class MagnitudeSelect
{
    public static void KeepTopK(float[] x, long k, CpuBackend cpu)
    {
        if (k >= x.Length) return;
        if (k <= 0) { Array.Clear(x); return; }
        var data = x;
        uint threshold = FindThreshold(data, k, cpu);
        long above = CountAbove(data, threshold, cpu);
        long tiesToKeep = k - above;
        for (int i = 0; i < x.Length; i++)
        {
            uint m = Magnitude(x[i]);
            if (m > threshold) continue;
            if (m == threshold && tiesToKeep > 0) { tiesToKeep--; continue; }
            x[i] = 0f;
        }
    }

    /// <summary>|x| as an order-preserving unsigned key; NaN ranks above every number, as in torch.</summary>
    public static uint Magnitude(float v) => BitConverter.SingleToUInt32Bits(v) & 0x7FFF_FFFF;

    /// <summary>The magnitude key t with count(&gt; t) &lt; k ≤ count(≥ t).</summary>
    public static uint FindThreshold(float[] data, long k, CpuBackend cpu)
    {
        var high = Histogram(data, cpu, static (m, _) => true, static m => (int)(m >> 16));
        long remaining = k;
        int hb = 0xFFFF;
        for (; hb > 0; hb--)
        {
            if (high[hb] >= remaining) break;
            remaining -= high[hb];
        }
        uint prefix = (uint)hb << 16;
        var low = Histogram(data, cpu, (m, _) => (m & 0xFFFF_0000) == prefix, static m => (int)(m & 0xFFFF));
        int lb = 0xFFFF;
        for (; lb > 0; lb--)
        {
            if (low[lb] >= remaining) break;
            remaining -= low[lb];
        }
        return prefix | (uint)lb;
    }

    private static long CountAbove(float[] data, uint threshold, CpuBackend cpu) =>
        (long)cpu.Reduce(data.Length, (o, n) =>
        {
            long c = 0;
            foreach (float v in data.AsSpan(o, n)) if (Magnitude(v) > threshold) c++;
            return c;
        });

    private static long[] Histogram(float[] data, CpuBackend cpu, Func<uint, int, bool> include, Func<uint, int> bin)
    {
        int chunks = CpuBackend.ChunkCount(data.Length);
        var partial = new long[chunks][];
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = cpu.Threads }, c =>
        {
            var (o, n) = CpuBackend.ChunkRange(c, data.Length);
            var h = new long[1 << 16];
            foreach (float v in data.AsSpan(o, n))
            {
                uint m = Magnitude(v);
                if (include(m, 0)) h[bin(m)]++;
            }
            partial[c] = h;
        });
        var total = new long[1 << 16];
        foreach (var h in partial)
            for (int i = 0; i < h.Length; i++) total[i] += h[i];
        return total;
    }
}
