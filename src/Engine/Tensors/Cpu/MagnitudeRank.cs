namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>Ranks one line of magnitude keys: a stable LSD radix sort, 8 bits a pass, that skips passes whose digit never varies.</summary>
internal static class MagnitudeRank
{
    /// <summary>
    /// Fills <paramref name="order"/> with the positions 0..n−1 of <paramref name="keys"/> in ascending key order,
    /// equal keys by descending position (the order the DELLA rank rule uses). <paramref name="swap"/> is scratch of the same length.
    /// </summary>
    public static void SortAscending(uint[] keys, int[] order, int[] swap)
    {
        int n = keys.Length;
        if (n == 0) return;
        for (int j = 0; j < n; j++) order[j] = n - 1 - j; // a stable sort then keeps equal keys by descending position
        Span<int> counts = stackalloc int[256];
        int[] from = order, to = swap;
        for (int shift = 0; shift < 32; shift += 8)
        {
            counts.Clear();
            foreach (uint k in keys) counts[(int)((k >> shift) & 0xFF)]++;
            if (counts[(int)((keys[0] >> shift) & 0xFF)] == n) continue;
            int sum = 0;
            for (int d = 0; d < 256; d++)
            {
                int c = counts[d];
                counts[d] = sum;
                sum += c;
            }
            for (int j = 0; j < n; j++)
            {
                int p = from[j];
                to[counts[(int)((keys[p] >> shift) & 0xFF)]++] = p;
            }
            (from, to) = (to, from);
        }
        if (!ReferenceEquals(from, order)) from.AsSpan(0, n).CopyTo(order);
    }
}
