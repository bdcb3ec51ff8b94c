using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>Dimensions of a strided-batched GEMM: C[b] ← alpha·op(A[b])·op(B[b]) + beta·C[b], every matrix row-major and packed.</summary>
public readonly struct BatchedGemmShape
{
    /// <summary>Rows of op(A) and C.</summary>
    public readonly int M;
    /// <summary>Columns of op(B) and C.</summary>
    public readonly int N;
    /// <summary>Columns of op(A), rows of op(B).</summary>
    public readonly int K;
    /// <summary>1 when A is stored K×M (op(A) = Aᵀ), else 0.</summary>
    public readonly int TransA;
    /// <summary>1 when B is stored N×K (op(B) = Bᵀ), else 0.</summary>
    public readonly int TransB;
    /// <summary>Scale of the product.</summary>
    public readonly float Alpha;
    /// <summary>Scale of the old C (0: C is not read).</summary>
    public readonly float Beta;

    /// <summary>Creates the shape.</summary>
    public BatchedGemmShape(int m, int n, int k, bool transA, bool transB, float alpha, float beta)
    {
        (M, N, K, TransA, TransB, Alpha, Beta) = (m, n, k, transA ? 1 : 0, transB ? 1 : 0, alpha, beta);
    }
}

/// <summary>Dimensions of a head split/merge: rows are tokens (batch·seq), each of heads·headDim values.</summary>
public readonly struct HeadShape
{
    /// <summary>Sequences in the batch.</summary>
    public readonly int Batch;
    /// <summary>Tokens per sequence.</summary>
    public readonly int Seq;
    /// <summary>Attention heads.</summary>
    public readonly int Heads;
    /// <summary>Values per head.</summary>
    public readonly int HeadDim;

    /// <summary>Creates the shape.</summary>
    public HeadShape(int batch, int seq, int heads, int headDim) => (Batch, Seq, Heads, HeadDim) = (batch, seq, heads, headDim);
}

/// <summary>Dimensions of a patch extraction from [B, C, H, W] images into [B·(lead + gh·gw), C·P·P] rows.</summary>
public readonly struct PatchShape
{
    /// <summary>Images.</summary>
    public readonly int Batch;
    /// <summary>Channels.</summary>
    public readonly int Channels;
    /// <summary>Image height.</summary>
    public readonly int Height;
    /// <summary>Image width.</summary>
    public readonly int Width;
    /// <summary>Patch side P.</summary>
    public readonly int Patch;
    /// <summary>Zero rows before each image's patches (1 leaves the class-token slot).</summary>
    public readonly int LeadingRows;

    /// <summary>Creates the shape.</summary>
    public PatchShape(int batch, int channels, int height, int width, int patch, int leadingRows) =>
        (Batch, Channels, Height, Width, Patch, LeadingRows) = (batch, channels, height, width, patch, leadingRows);

    /// <summary>Patches per column of the grid, ⌊H/P⌋.</summary>
    public int GridH => Height / Patch;

    /// <summary>Patches per row of the grid, ⌊W/P⌋.</summary>
    public int GridW => Width / Patch;

    /// <summary>Rows per image: leading rows plus patches.</summary>
    public int RowsPerImage => LeadingRows + GridH * GridW;

    /// <summary>Values per row, C·P·P (the flattened conv kernel).</summary>
    public int RowLength => Channels * Patch * Patch;
}

/// <summary>
/// Kernels of the transformer forward pass (CLIP ViT, RoBERTa). Row kernels run one thread per
/// row and accumulate in float64 where the CPU twin does; element kernels one thread per output
/// value. Each has a CPU twin in the engine's CPU backend with the same arithmetic, and a test
/// that runs it on ILGPU's CPU accelerator against that twin.
/// </summary>
public static class NnKernels
{
    /// <summary>LayerNorm statistics of the row at offset o: mean and 1/√(σ² + eps), biased variance, float64.</summary>
    private static void RowMoments(ArrayView<float> x, long o, int cols, float eps, out double mean, out double rstd)
    {
        double sum = 0;
        for (int c = 0; c < cols; c++) sum += x[o + c];
        mean = sum / cols;
        double sq = 0;
        for (int c = 0; c < cols; c++)
        {
            double d = x[o + c] - mean;
            sq += d * d;
        }
        rstd = 1.0 / Math.Sqrt(sq / cols + eps);
    }

    /// <summary>
    /// LayerNorm of row <paramref name="row"/> over <paramref name="cols"/> values, as torch
    /// nn.LayerNorm: biased variance, eps inside the square root; mean and variance in float64.
    /// </summary>
    public static void LayerNorm(Index1D row, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> dst, int cols, float eps)
    {
        long o = (long)row.X * cols;
        RowMoments(x, o, cols, eps, out double mean, out double rstd);
        for (int c = 0; c < cols; c++)
            dst[o + c] = (float)((x[o + c] - mean) * rstd * gamma[c] + beta[c]);
    }

    /// <summary>
    /// LayerNorm backward, row part: recomputes the mean and 1/√(σ²+eps) of x's row (float64, saved
    /// to stats[2·row], stats[2·row+1] for <see cref="LayerNormBackwardColumns"/>) and adds
    /// rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂⊙x̂)), dx̂ = dy⊙γ, to dx.
    /// </summary>
    public static void LayerNormBackwardRows(Index1D row, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> gamma,
        ArrayView<float> dx, ArrayView<float> stats, int cols, float eps)
    {
        long o = (long)row.X * cols;
        RowMoments(x, o, cols, eps, out double mean, out double rstd);
        stats[2L * row.X] = (float)mean;
        stats[2L * row.X + 1] = (float)rstd;
        double sumD = 0, sumDx = 0;
        for (int c = 0; c < cols; c++)
        {
            double d = (double)dy[o + c] * gamma[c];
            sumD += d;
            sumDx += d * (x[o + c] - mean) * rstd;
        }
        sumD /= cols;
        sumDx /= cols;
        for (int c = 0; c < cols; c++)
        {
            double xh = (x[o + c] - mean) * rstd;
            dx[o + c] += (float)(rstd * ((double)dy[o + c] * gamma[c] - sumD - xh * sumDx));
        }
    }

    /// <summary>
    /// LayerNorm backward, column part (after <see cref="LayerNormBackwardRows"/> filled stats):
    /// dγ[c] += Σ_rows dy⊙x̂ and dβ[c] += Σ_rows dy, in float64.
    /// </summary>
    public static void LayerNormBackwardColumns(Index1D col, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> stats,
        ArrayView<float> dgamma, ArrayView<float> dbeta, int rows, int cols)
    {
        double g = 0, b = 0;
        for (int r = 0; r < rows; r++)
        {
            long i = (long)r * cols + col.X;
            double d = dy[i];
            g += d * (x[i] - stats[2L * r]) * stats[2L * r + 1];
            b += d;
        }
        dgamma[col] += (float)g;
        dbeta[col] += (float)b;
    }

    /// <summary>dx[i] ← dy[i]·GELU′(x[i]) (<see cref="NnMath.GeluGrad"/>).</summary>
    public static void GeluBackward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx) => dx[i] = dy[i] * NnMath.GeluGrad(x[i]);

    /// <summary>dx[i] ← dy[i]·QuickGELU′(x[i]) (<see cref="NnMath.QuickGeluGrad"/>).</summary>
    public static void QuickGeluBackward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx) => dx[i] = dy[i] * NnMath.QuickGeluGrad(x[i]);

    /// <summary>
    /// Softmax backward of row <paramref name="row"/> for y = softmax(scale·x):
    /// dx ← scale·y⊙(dy − Σ y⊙dy), the dot in float64.
    /// </summary>
    public static void SoftmaxRowsBackward(Index1D row, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, int cols, float scale)
    {
        long o = (long)row.X * cols;
        double dot = 0;
        for (int c = 0; c < cols; c++) dot += (double)y[o + c] * dy[o + c];
        for (int c = 0; c < cols; c++) dx[o + c] = (float)(scale * y[o + c] * (dy[o + c] - dot));
    }

    /// <summary>dst[r, c] ← x[r, c] + rows[r mod period, c] over rows of <paramref name="cols"/> values.</summary>
    public static void AddRowVector(Index1D i, ArrayView<float> x, ArrayView<float> rows, ArrayView<float> dst, int cols, int period)
    {
        long r = i / cols;
        int c = (int)(i % cols);
        dst[i] = x[i] + rows[r % period * cols + c];
    }

    /// <summary>
    /// The adjoint of <see cref="AddRowVector"/> for its rows: thread i = q·cols + c adds
    /// Σ_{r mod period = q} dy[r, c] (r ascending, float64) to dRows[i].
    /// </summary>
    public static void AddRowVectorBackward(Index1D i, ArrayView<float> dy, ArrayView<float> dRows, int cols, int period, int rows)
    {
        long q = i / cols;
        int c = (int)(i % cols);
        double sum = 0;
        for (long r = q; r < rows; r += period) sum += dy[r * cols + c];
        dRows[i] += (float)sum;
    }

    /// <summary>dst[i] ← exact GELU of x[i] (<see cref="NnMath.Gelu"/>).</summary>
    public static void Gelu(Index1D i, ArrayView<float> x, ArrayView<float> dst) => dst[i] = NnMath.Gelu(x[i]);

    /// <summary>dst[i] ← x[i]·σ(1.702·x[i]) (<see cref="NnMath.QuickGelu"/>).</summary>
    public static void QuickGelu(Index1D i, ArrayView<float> x, ArrayView<float> dst) => dst[i] = NnMath.QuickGelu(x[i]);

    /// <summary>dst[i] ← tanh(x[i]) (<see cref="NnMath.Tanh"/>).</summary>
    public static void Tanh(Index1D i, ArrayView<float> x, ArrayView<float> dst) => dst[i] = NnMath.Tanh(x[i]);

    /// <summary>
    /// Softmax of row <paramref name="row"/> of <paramref name="cols"/> values after
    /// v = scale·x + bias[row / rowsPerBias] (no bias when <paramref name="hasBias"/> is 0):
    /// the row max is subtracted first, the sum of exponentials runs in float64.
    /// </summary>
    public static void SoftmaxRows(Index1D row, ArrayView<float> x, ArrayView<float> bias, ArrayView<float> dst,
        int cols, float scale, int rowsPerBias, int hasBias)
    {
        long o = (long)row.X * cols;
        long b = hasBias != 0 ? (long)(row.X / rowsPerBias) * cols : 0;
        float max = float.NegativeInfinity;
        for (int c = 0; c < cols; c++)
        {
            float v = scale * x[o + c];
            if (hasBias != 0) v += bias[b + c];
            dst[o + c] = v;
            if (v > max) max = v;
        }
        double sum = 0;
        for (int c = 0; c < cols; c++)
        {
            float e = NnMath.ExpF(dst[o + c] - max);
            dst[o + c] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (int c = 0; c < cols; c++) dst[o + c] *= inv;
    }

    /// <summary>
    /// One value of a strided-batched GEMM: thread i computes C[b, r, c] with b·M·N + r·N + c = i,
    /// summing over k in order in float32.
    /// </summary>
    public static void GemmStridedBatched(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, BatchedGemmShape s)
    {
        long mn = (long)s.M * s.N;
        long batch = i / mn;
        long rem = i % mn;
        int r = (int)(rem / s.N), col = (int)(rem % s.N);
        long ao = batch * s.M * s.K, bo = batch * s.K * s.N;
        float sum = 0f;
        for (int p = 0; p < s.K; p++)
        {
            float av = s.TransA != 0 ? a[ao + (long)p * s.M + r] : a[ao + (long)r * s.K + p];
            float bv = s.TransB != 0 ? b[bo + (long)col * s.K + p] : b[bo + (long)p * s.N + col];
            sum += av * bv;
        }
        c[i] = s.Beta == 0f ? s.Alpha * sum : s.Alpha * sum + s.Beta * c[i];
    }

    /// <summary>
    /// [B·T, H·D] → [B·H, T, D]: thread i writes dst[i], i = ((b·H + h)·T + t)·D + d, from
    /// x[(b·T + t)·H·D + h·D + d].
    /// </summary>
    public static void SplitHeads(Index1D i, ArrayView<float> x, ArrayView<float> dst, HeadShape s)
    {
        int d = (int)(i % s.HeadDim);
        long rest = i / s.HeadDim;
        int t = (int)(rest % s.Seq);
        rest /= s.Seq;
        int h = (int)(rest % s.Heads);
        long b = rest / s.Heads;
        dst[i] = x[((b * s.Seq + t) * s.Heads + h) * s.HeadDim + d];
    }

    /// <summary>[B·H, T, D] → [B·T, H·D], the inverse of <see cref="SplitHeads"/>: thread i writes dst[i].</summary>
    public static void MergeHeads(Index1D i, ArrayView<float> x, ArrayView<float> dst, HeadShape s)
    {
        int d = (int)(i % s.HeadDim);
        long rest = i / s.HeadDim;
        int h = (int)(rest % s.Heads);
        rest /= s.Heads;
        int t = (int)(rest % s.Seq);
        long b = rest / s.Seq;
        dst[i] = x[((b * s.Heads + h) * s.Seq + t) * s.HeadDim + d];
    }

    /// <summary>dst[r, c] ← table[rows[r], c] over rows of <paramref name="cols"/> values.</summary>
    public static void GatherRows(Index1D i, ArrayView<float> table, ArrayView<int> rows, ArrayView<float> dst, int cols)
    {
        long r = i / cols;
        int c = (int)(i % cols);
        dst[i] = table[(long)rows[r] * cols + c];
    }

    /// <summary>
    /// dst[rows[r], c] += src[r, c], the adjoint of <see cref="GatherRows"/>: thread i = r·cols + c.
    /// The indices are distinct, so no two threads touch one value.
    /// </summary>
    public static void ScatterAddRows(Index1D i, ArrayView<float> src, ArrayView<int> rows, ArrayView<float> dst, int cols)
    {
        long r = i / cols;
        int c = (int)(i % cols);
        dst[(long)rows[r] * cols + c] += src[i];
    }

    /// <summary>
    /// Patch extraction (the im2col of a stride-P, kernel-P convolution): thread i writes dst[i] of
    /// row (img, p) and column (ch, ky, kx), the value x[img, ch, gy·P + ky, gx·P + kx] of patch
    /// p − lead = gy·gw + gx (row-major grid), or 0 in the leading rows.
    /// </summary>
    public static void Patchify(Index1D i, ArrayView<float> images, ArrayView<float> dst, PatchShape s)
    {
        int len = s.RowLength;
        long row = i / len;
        int col = (int)(i % len);
        int perImage = s.RowsPerImage;
        long img = row / perImage;
        int p = (int)(row % perImage) - s.LeadingRows;
        if (p < 0)
        {
            dst[i] = 0f;
            return;
        }
        int gw = s.GridW;
        int gy = p / gw, gx = p % gw;
        int pp = s.Patch * s.Patch;
        int ch = col / pp, k = col % pp;
        int ky = k / s.Patch, kx = k % s.Patch;
        long src = ((img * s.Channels + ch) * s.Height + gy * s.Patch + ky) * s.Width + gx * s.Patch + kx;
        dst[i] = images[src];
    }
}
