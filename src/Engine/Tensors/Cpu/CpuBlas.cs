namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>
/// Row-major single-precision BLAS-3/2 routines for the CPU backend.
/// </summary>
internal static class CpuBlas
{
    /// <summary>C[m×n] ← alpha·op(A)·op(B) + beta·C; lda/ldb/ldc are row strides of the stored matrices.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc, int threads)
    {
        if (!transA && transB)
        {
            // x·Wᵀ (every nn.Linear): both operands are read along contiguous rows, so each output is one
            // SIMD dot; 16 rows of A share each tile of 64 rows of B while it is in cache.
            const int RowBlock = 16, ColBlock = 64;
            Parallel.For(0, (m + RowBlock - 1) / RowBlock, new ParallelOptions { MaxDegreeOfParallelism = threads }, blk =>
            {
                int i0 = blk * RowBlock, i1 = Math.Min(m, i0 + RowBlock);
                for (int j0 = 0; j0 < n; j0 += ColBlock)
                {
                    int j1 = Math.Min(n, j0 + ColBlock);
                    for (int i = i0; i < i1; i++)
                    {
                        var ai = a.AsSpan(i * lda, k);
                        for (int j = j0; j < j1; j++)
                        {
                            float s = System.Numerics.Tensors.TensorPrimitives.Dot(ai, b.AsSpan(j * ldb, k));
                            c[i * ldc + j] = alpha * s + (beta == 0f ? 0f : beta * c[i * ldc + j]);
                        }
                    }
                }
            });
            return;
        }
        Parallel.For(0, m, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            for (int j = 0; j < n; j++)
            {
                float s = 0f;
                for (int p = 0; p < k; p++)
                    s += (transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                c[i * ldc + j] = alpha * s + (beta == 0f ? 0f : beta * c[i * ldc + j]);
            }
        });
    }

    /// <summary>C[n×n] ← alpha·op(A)·op(A)ᵀ + beta·C, op(A) = Aᵀ when transA; full matrix written.</summary>
    public static void Ssyrk(bool transA, int n, int k, float alpha, float[] a, int lda, float beta, float[] c, int ldc, int threads) =>
        Sgemm(transA, !transA, n, n, k, alpha, a, lda, a, lda, beta, c, ldc, threads);

    /// <summary>y ← alpha·op(A)·x + beta·y for the stored rows×cols matrix A.</summary>
    public static void Sgemv(bool transA, int rows, int cols, float alpha, float[] a, int lda, float[] x, float beta, float[] y, int threads)
    {
        int m = transA ? cols : rows, k = transA ? rows : cols;
        Parallel.For(0, m, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            double s = 0;
            for (int p = 0; p < k; p++) s += (transA ? a[p * lda + i] : a[i * lda + p]) * x[p];
            y[i] = alpha * (float)s + (beta == 0f ? 0f : beta * y[i]);
        });
    }
}
