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
}
