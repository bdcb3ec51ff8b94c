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
}
