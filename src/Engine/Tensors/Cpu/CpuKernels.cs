using System.Runtime.Intrinsics;

namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>CPU twins of the fused device kernels, one chunk at a time.</summary>
internal static class CpuKernels
{
    /// <summary>
    /// TIES "sum" sign election + disjoint merge on elements [offset, offset+count): entries equal
    /// to 0 or NaN never agree with the majority; sums run over k in order, in float32.
    /// </summary>
    public static void SignConsensus(float[][] weighted, float[] weights, int offset, int count, float[] mixed, float[] divisor)
    {
        int k = weighted.Length, i = offset, end = offset + count;
        if (Vector256.IsHardwareAccelerated)
        {
            var zero = Vector256<float>.Zero;
            var one = Vector256<float>.One;
            for (; i + 8 <= end; i += 8)
            {
                var total = zero;
                for (int j = 0; j < k; j++) total += Vector256.Create(weighted[j].AsSpan(i, 8));
                var positive = Vector256.GreaterThanOrEqual(total, zero);
                var m = zero;
                var d = zero;
                for (int j = 0; j < k; j++)
                {
                    var v = Vector256.Create(weighted[j].AsSpan(i, 8));
                    var agree = Vector256.ConditionalSelect(positive, Vector256.GreaterThan(v, zero), Vector256.LessThan(v, zero));
                    m += v & agree;
                    d += Vector256.Create(weights[j]) & agree;
                }
                m.CopyTo(mixed.AsSpan(i, 8));
                Vector256.ConditionalSelect(Vector256.Equals(d, zero), one, d).CopyTo(divisor.AsSpan(i, 8));
            }
        }
        for (; i < end; i++)
        {
            float total = 0f;
            for (int j = 0; j < k; j++) total += weighted[j][i];
            bool positive = total >= 0f;
            float m = 0f, d = 0f;
            for (int j = 0; j < k; j++)
            {
                float v = weighted[j][i];
                if (positive ? v > 0f : v < 0f)
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
