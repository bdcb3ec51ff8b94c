using System.Numerics.Tensors;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>
/// Transformer forward-pass ops: the CPU twins of <see cref="NnKernels"/>. Row ops run rows in
/// parallel; elementwise activations share the scalar functions of <see cref="NnMath"/> with the
/// kernels; reductions accumulate in float64.
/// </summary>
public sealed partial class CpuBackend
{
    private const int RowsPerTask = 16;

    /// <inheritdoc />
    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor dst)
    {
        int rows = OpShapes.LayerNorm(x, gamma, beta, dst), n = checked((int)gamma.Length);
        float[] xs = Data(x), g = Data(gamma), b = Data(beta), d = Data(dst);
        ForRows(rows, r =>
        {
            var row = xs.AsSpan(r * n, n);
            var (mean, rstd) = Reductions.RowMoments(row, eps);
            var o = d.AsSpan(r * n, n);
            for (int c = 0; c < n; c++) o[c] = (float)((row[c] - mean) * rstd * g[c] + b[c]);
        });
    }

    /// <inheritdoc />
    public void AddRowVector(Tensor x, Tensor rows, Tensor dst)
    {
        var (n, period) = OpShapes.AddRowVector(x, rows, dst);
        int count = checked((int)(x.Length / n));
        float[] xs = Data(x), v = Data(rows), d = Data(dst);
        ForRows(count, r => TensorPrimitives.Add(xs.AsSpan(r * n, n), v.AsSpan(r % period * n, n), d.AsSpan(r * n, n)));
    }

    /// <inheritdoc />
    public void Gelu(Tensor x, Tensor dst) => Map(x, dst, NnMath.Gelu);

    /// <inheritdoc />
    public void QuickGelu(Tensor x, Tensor dst) => Map(x, dst, NnMath.QuickGelu);

    /// <inheritdoc />
    public void Tanh(Tensor x, Tensor dst) => Map(x, dst, NnMath.Tanh);

    /// <inheritdoc />
    public void SoftmaxRows(Tensor x, Tensor dst, float scale = 1f, Tensor? bias = null, int rowsPerBiasRow = 1)
    {
        var (n, rows) = OpShapes.Softmax(x, dst, bias, rowsPerBiasRow);
        float[] xs = Data(x), d = Data(dst), bs = bias is null ? [] : Data(bias);
        ForRows(rows, r =>
        {
            var o = d.AsSpan(r * n, n);
            TensorPrimitives.Multiply(xs.AsSpan(r * n, n), scale, o);
            if (bias is not null) TensorPrimitives.Add(o, bs.AsSpan(r / rowsPerBiasRow * n, n), o);
            float max = TensorPrimitives.Max(o);
            TensorPrimitives.Subtract(o, max, o);
            TensorPrimitives.Exp(o, o);
            float inv = (float)(1.0 / Reductions.Sum(o));
            TensorPrimitives.Multiply(o, inv, o);
        });
    }

    /// <inheritdoc />
    public void GemmStridedBatched(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        var (batch, m, n, k) = OpShapes.BatchedGemm(a, transA, b, transB, c);
        float[] av = Data(a), bv = Data(b), cv = Data(c);
        int aStride = m * k, bStride = k * n, cStride = m * n;
        if (k > 0 && m > 1 && n > 1 && (long)m * n * k > CpuBlas.SmallGemm)
        {
            ForRows(batch, bi => CpuBlas.SgemmSerialAt(transA, transB, m, n, k, alpha, av, bi * aStride, transA ? m : k,
                bv, bi * bStride, transB ? k : n, beta, cv, bi * cStride, n));
            return;
        }
        ForRows(batch * m, row =>
        {
            int bi = row / m, i = row % m;
            var cRow = cv.AsSpan(bi * cStride + i * n, n);
            int ao = bi * aStride, bo = bi * bStride;
            if (!transA && transB)
            {
                var aRow = av.AsSpan(ao + i * k, k);
                for (int j = 0; j < n; j++)
                {
                    float s = alpha * TensorPrimitives.Dot(aRow, bv.AsSpan(bo + j * k, k));
                    cRow[j] = beta == 0f ? s : s + beta * cRow[j];
                }
                return;
            }
            Span<float> acc = n <= 4096 ? stackalloc float[n] : new float[n];
            acc.Clear();
            for (int p = 0; p < k; p++)
            {
                float aip = transA ? av[ao + p * m + i] : av[ao + i * k + p];
                if (!transB) TensorPrimitives.MultiplyAdd(bv.AsSpan(bo + p * n, n), aip, acc, acc);
                else for (int j = 0; j < n; j++) acc[j] += aip * bv[bo + j * k + p];
            }
            if (beta == 0f) TensorPrimitives.Multiply(acc, alpha, cRow);
            else
            {
                TensorPrimitives.Multiply(cRow, beta, cRow);
                TensorPrimitives.MultiplyAdd(acc, alpha, cRow, cRow);
            }
        });
    }

    /// <inheritdoc />
    public void SplitHeads(Tensor x, Tensor dst, int heads)
    {
        var s = OpShapes.Heads(x, dst, heads, "split-heads");
        int d = s.HeadDim, width = s.Heads * d;
        float[] xs = Data(x), o = Data(dst);
        ForRows(s.Batch * s.Seq, row =>
        {
            int b = row / s.Seq, t = row % s.Seq;
            for (int h = 0; h < s.Heads; h++)
                xs.AsSpan(row * width + h * d, d).CopyTo(o.AsSpan(((b * s.Heads + h) * s.Seq + t) * d, d));
        });
    }

    /// <inheritdoc />
    public void MergeHeads(Tensor x, Tensor dst, int heads)
    {
        var s = OpShapes.Heads(dst, x, heads, "merge-heads");
        int d = s.HeadDim, width = s.Heads * d;
        float[] xs = Data(x), o = Data(dst);
        ForRows(s.Batch * s.Seq, row =>
        {
            int b = row / s.Seq, t = row % s.Seq;
            for (int h = 0; h < s.Heads; h++)
                xs.AsSpan(((b * s.Heads + h) * s.Seq + t) * d, d).CopyTo(o.AsSpan(row * width + h * d, d));
        });
    }

    /// <inheritdoc />
    public void GatherRows(Tensor table, ReadOnlySpan<int> rows, Tensor dst)
    {
        int n = OpShapes.Gather(table, rows, dst);
        float[] t = Data(table), d = Data(dst);
        for (int i = 0; i < rows.Length; i++) t.AsSpan(rows[i] * n, n).CopyTo(d.AsSpan(i * n, n));
    }

    /// <inheritdoc />
    public void ScatterAddRows(Tensor src, ReadOnlySpan<int> rows, Tensor dst)
    {
        int n = OpShapes.Scatter(src, rows, dst);
        float[] s = Data(src), d = Data(dst);
        for (int i = 0; i < rows.Length; i++)
        {
            var row = d.AsSpan(rows[i] * n, n);
            TensorPrimitives.Add(row, s.AsSpan(i * n, n), row);
        }
    }

    /// <inheritdoc />
    public void Patchify(Tensor images, int patch, int leadingRows, Tensor dst)
    {
        var s = OpShapes.Patchify(images, patch, leadingRows, dst);
        float[] x = Data(images), o = Data(dst);
        int len = s.RowLength, gw = s.GridW, perImage = s.RowsPerImage;
        ForRows(s.Batch * perImage, row =>
        {
            int img = row / perImage, p = row % perImage - s.LeadingRows;
            var dRow = o.AsSpan(row * len, len);
            if (p < 0)
            {
                dRow.Clear();
                return;
            }
            int gy = p / gw, gx = p % gw, col = 0;
            for (int ch = 0; ch < s.Channels; ch++)
                for (int ky = 0; ky < s.Patch; ky++, col += s.Patch)
                {
                    int src = ((img * s.Channels + ch) * s.Height + gy * s.Patch + ky) * s.Width + gx * s.Patch;
                    x.AsSpan(src, s.Patch).CopyTo(dRow.Slice(col, s.Patch));
                }
        });
    }

    /// <inheritdoc />
    public void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, float eps, Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        int rows = OpShapes.LayerNormBackward(dy, x, gamma, dx, dgamma, dbeta), n = checked((int)gamma.Length);
        float[] dys = Data(dy), xs = Data(x), g = Data(gamma), dxs = Data(dx), dg = Data(dgamma), db = Data(dbeta);
        var stats = new float[2 * rows];
        ForRows(rows, r =>
        {
            var row = xs.AsSpan(r * n, n);
            var dyr = dys.AsSpan(r * n, n);
            var (mean, rstd) = Reductions.RowMoments(row, eps);
            stats[2 * r] = (float)mean;
            stats[2 * r + 1] = (float)rstd;
            double sumD = 0, sumDx = 0;
            for (int c = 0; c < n; c++)
            {
                double d = (double)dyr[c] * g[c];
                sumD += d;
                sumDx += d * (row[c] - mean) * rstd;
            }
            sumD /= n;
            sumDx /= n;
            var o = dxs.AsSpan(r * n, n);
            for (int c = 0; c < n; c++) o[c] += (float)(rstd * ((double)dyr[c] * g[c] - sumD - (row[c] - mean) * rstd * sumDx));
        });
        ForRows(n, c =>
        {
            double gs = 0, bs = 0;
            for (int r = 0; r < rows; r++)
            {
                double d = dys[r * n + c];
                gs += d * (xs[r * n + c] - stats[2 * r]) * stats[2 * r + 1];
                bs += d;
            }
            dg[c] += (float)gs;
            db[c] += (float)bs;
        });
    }

    /// <inheritdoc />
    public void AddRowVectorBackward(Tensor dy, Tensor dRows)
    {
        var (n, period) = OpShapes.AddRowVector(dy, dRows, dy);
        int rows = checked((int)(dy.Length / n));
        float[] g = Data(dy), d = Data(dRows);
        ForRows(period, q =>
        {
            var sum = new double[n];
            for (int r = q; r < rows; r += period)
            {
                var row = g.AsSpan(r * n, n);
                for (int c = 0; c < n; c++) sum[c] += row[c];
            }
            var o = d.AsSpan(q * n, n);
            for (int c = 0; c < n; c++) o[c] += (float)sum[c];
        });
    }

    /// <inheritdoc />
    public void GeluBackward(Tensor x, Tensor dy, Tensor dx) => MapBackward(x, dy, dx, NnMath.GeluGrad);

    /// <inheritdoc />
    public void QuickGeluBackward(Tensor x, Tensor dy, Tensor dx) => MapBackward(x, dy, dx, NnMath.QuickGeluGrad);

    /// <inheritdoc />
    public void SoftmaxRowsBackward(Tensor y, Tensor dy, Tensor dx, float scale = 1f)
    {
        var (n, rows) = OpShapes.SoftmaxBackward(y, dy, dx);
        float[] ys = Data(y), dys = Data(dy), dxs = Data(dx);
        ForRows(rows, r =>
        {
            double dot = 0;
            for (int c = 0; c < n; c++) dot += (double)ys[r * n + c] * dys[r * n + c];
            for (int c = 0; c < n; c++) dxs[r * n + c] = (float)(scale * ys[r * n + c] * (dys[r * n + c] - dot));
        });
    }

    private void MapBackward(Tensor x, Tensor dy, Tensor dx, Func<float, float> grad)
    {
        OpShapes.Elementwise3(x, dy, dx);
        float[] xs = Data(x), dys = Data(dy), dxs = Data(dx);
        ForChunks(x.Length, (o, n) =>
        {
            for (int i = o; i < o + n; i++) dxs[i] = dys[i] * grad(xs[i]);
        });
    }

    private void Map(Tensor x, Tensor dst, Func<float, float> f)
    {
        SameLength(x, dst);
        ForChunks(x.Length, (o, n) =>
        {
            var s = Data(x).AsSpan(o, n);
            var d = Data(dst).AsSpan(o, n);
            for (int i = 0; i < s.Length; i++) d[i] = f(s[i]);
        });
    }

    /// <summary>Runs <paramref name="body"/> for every row, in blocks of rows across threads.</summary>
    private void ForRows(int rows, Action<int> body)
    {
        if (rows <= RowsPerTask)
        {
            for (int r = 0; r < rows; r++) body(r);
            return;
        }
        int blocks = (rows + RowsPerTask - 1) / RowsPerTask;
        Parallel.For(0, blocks, _parallel, blk =>
        {
            int end = Math.Min(rows, (blk + 1) * RowsPerTask);
            for (int r = blk * RowsPerTask; r < end; r++) body(r);
        });
    }
}
