namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>Scalar CPU twins of the fused device kernels, one chunk at a time.</summary>
internal static class CpuKernels
{
    /// <summary>TIES "sum" sign election + disjoint merge on elements [offset, offset+count).</summary>
    public static void SignConsensus(float[][] weighted, float[] weights, int offset, int count, float[] mixed, float[] divisor)
    {
        int k = weighted.Length;
        for (int i = offset; i < offset + count; i++)
        {
            float total = 0f;
            for (int j = 0; j < k; j++) total += weighted[j][i];
            float majority = total >= 0f ? 1f : -1f;
            float m = 0f, d = 0f;
            for (int j = 0; j < k; j++)
            {
                float v = weighted[j][i];
                if (MathF.Sign(v) == majority)
                {
                    m += v;
                    d += weights[j];
                }
            }
            mixed[i] = m;
            divisor[i] = d == 0f ? 1f : d;
        }
    }

    /// <summary>
    /// dst[i·|b| + j] = Σ a[i][e]·b[j][e] over e ∈ [offset, offset+count), float64 products and
    /// accumulation; for a Gram (a and b the same list) only j ≥ i is computed and mirrored. Works
    /// through the range in slices small enough that every input's slice stays in L1 while all
    /// pairs use it, so the inputs are read from memory once.
    /// </summary>
    public static void PairDots(float[][] a, float[][] b, bool gram, int offset, int count, Span<double> dst)
    {
        const int Slice = 512;
        int na = a.Length, nb = b.Length;
        dst.Clear();
        for (int s = offset; s < offset + count; s += Slice)
        {
            int n = Math.Min(Slice, offset + count - s);
            for (int i = 0; i < na; i++)
            {
                var ai = new ReadOnlySpan<float>(a[i], s, n);
                for (int j = gram ? i : 0; j < nb; j++)
                    dst[i * nb + j] += Reductions.Dot(ai, new ReadOnlySpan<float>(b[j], s, n));
            }
        }
        if (!gram) return;
        for (int i = 0; i < na; i++)
            for (int j = 0; j < i; j++) dst[i * nb + j] = dst[j * nb + i];
    }
}
