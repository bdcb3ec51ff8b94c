using System.Numerics.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Models;

/// <summary>
/// CPU-only forward/backward op pairs for training the CLIP vision tower, llm.c style: each
/// backward sits next to the forward whose saved values it reads. Plain row-major float32 host
/// arrays; row statistics and reductions accumulate in float64. Backward ops ADD into their
/// gradient outputs (dx, dW, db ...), so callers zero them once and residual branches sum for free,
/// except where a method says it overwrites.
/// </summary>
/// <remarks>Not on <see cref="Tensors.IBackend"/> yet: there is no ILGPU twin of these ops.</remarks>
internal static class ClipVisionBackward
{
    private const int RowsPerTask = 16;

    /// <summary>Runs <paramref name="body"/> for rows in blocks across up to <paramref name="threads"/> threads.</summary>
    internal static void ForRows(int rows, int threads, Action<int> body)
    {
        if (threads <= 1 || rows <= RowsPerTask)
        {
            for (int r = 0; r < rows; r++) body(r);
            return;
        }
        int blocks = (rows + RowsPerTask - 1) / RowsPerTask;
        Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = threads }, blk =>
        {
            int end = Math.Min(rows, (blk + 1) * RowsPerTask);
            for (int r = blk * RowsPerTask; r < end; r++) body(r);
        });
    }

    // ---- LayerNorm ----

    /// <summary>
    /// y ← LayerNorm(x) per row of n values (torch nn.LayerNorm, biased variance); saves the row mean
    /// and 1/√(σ² + eps) for <see cref="LayerNormBackward"/>. y must not be x.
    /// </summary>
    public static void LayerNormForward(float[] x, int rows, int n, float[] gamma, float[] beta, float eps,
        float[] y, float[] mean, float[] rstd, int threads)
    {
        ForRows(rows, threads, r =>
        {
            var row = x.AsSpan(r * n, n);
            var (m, rs) = Tensors.Cpu.Reductions.RowMoments(row, eps);
            mean[r] = (float)m;
            rstd[r] = (float)rs;
            var o = y.AsSpan(r * n, n);
            for (int c = 0; c < n; c++) o[c] = (float)((row[c] - m) * rs * gamma[c] + beta[c]);
        });
    }

    /// <summary>
    /// LayerNorm backward from the forward's input x and saved mean/rstd:
    /// dx += rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂⊙x̂)) with dx̂ = dy⊙γ; dγ += Σ_rows dy⊙x̂; dβ += Σ_rows dy.
    /// </summary>
    public static void LayerNormBackward(float[] dy, float[] x, float[] mean, float[] rstd, float[] gamma, int rows, int n,
        float[] dx, float[] dgamma, float[] dbeta, int threads)
    {
        ForRows(rows, threads, r =>
        {
            var xr = x.AsSpan(r * n, n);
            var dyr = dy.AsSpan(r * n, n);
            double m = mean[r], rs = rstd[r], sumD = 0, sumDx = 0;
            for (int c = 0; c < n; c++)
            {
                double d = (double)dyr[c] * gamma[c];
                sumD += d;
                sumDx += d * (xr[c] - m) * rs;
            }
            sumD /= n;
            sumDx /= n;
            var o = dx.AsSpan(r * n, n);
            for (int c = 0; c < n; c++)
            {
                double xh = (xr[c] - m) * rs;
                o[c] += (float)(rs * ((double)dyr[c] * gamma[c] - sumD - xh * sumDx));
            }
        });
        ForRows(n, threads, c =>
        {
            double g = 0, b = 0;
            for (int r = 0; r < rows; r++)
            {
                double d = dy[r * n + c];
                g += d * (x[r * n + c] - mean[r]) * rstd[r];
                b += d;
            }
            dgamma[c] += (float)g;
            dbeta[c] += (float)b;
        });
    }

    // ---- Activations ----

    /// <summary>dst ← act(x) elementwise (the engine's <see cref="NnMath"/> forms); dst may be x.</summary>
    public static void ActivationForward(Activation act, float[] x, float[] dst, int threads)
    {
        Func<float, float> f = act switch
        {
            Activation.Gelu => NnMath.Gelu,
            Activation.QuickGelu => NnMath.QuickGelu,
            _ => throw new ArgumentOutOfRangeException(nameof(act), act, null),
        };
        int chunk = 4096;
        ForRows((x.Length + chunk - 1) / chunk, threads, blk =>
        {
            int end = Math.Min(x.Length, (blk + 1) * chunk);
            for (int i = blk * chunk; i < end; i++) dst[i] = f(x[i]);
        });
    }

    /// <summary>dx ← dy ⊙ act′(x), overwriting dx (x is the pre-activation the forward saved); dx may be dy.</summary>
    public static void ActivationBackward(Activation act, float[] x, float[] dy, float[] dx, int threads)
    {
        Func<float, float> f = act switch
        {
            Activation.Gelu => NnMath.GeluGrad,
            Activation.QuickGelu => NnMath.QuickGeluGrad,
            _ => throw new ArgumentOutOfRangeException(nameof(act), act, null),
        };
        int chunk = 4096;
        ForRows((x.Length + chunk - 1) / chunk, threads, blk =>
        {
            int end = Math.Min(x.Length, (blk + 1) * chunk);
            for (int i = blk * chunk; i < end; i++) dx[i] = dy[i] * f(x[i]);
        });
    }

    // ---- Softmax ----

    /// <summary>y ← softmax(scale·x) over one row (max subtracted, float64 normaliser); y may be x.</summary>
    public static void SoftmaxForward(ReadOnlySpan<float> x, float scale, Span<float> y)
    {
        TensorPrimitives.Multiply(x, scale, y);
        float max = TensorPrimitives.Max(y);
        TensorPrimitives.Subtract(y, max, y);
        TensorPrimitives.Exp(y, y);
        double sum = 0;
        foreach (float v in y) sum += v;
        TensorPrimitives.Multiply(y, (float)(1.0 / sum), y);
    }

    /// <summary>
    /// Softmax backward for one row of y = softmax(scale·x): dx ← scale·y⊙(dy − Σ y⊙dy), overwriting
    /// dx; dx may be dy.
    /// </summary>
    public static void SoftmaxBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, float scale, Span<float> dx)
    {
        double dot = 0;
        for (int j = 0; j < y.Length; j++) dot += (double)y[j] * dy[j];
        for (int j = 0; j < y.Length; j++) dx[j] = (float)(scale * y[j] * (dy[j] - dot));
    }

    // ---- Linear (nn.Linear, W [out, in]) ----

    /// <summary>y ← x·Wᵀ + b for x [rows, in], y [rows, out]; b may be null.</summary>
    public static void LinearForward(float[] x, int rows, int inF, float[] w, float[]? b, int outF, float[] y, int threads)
    {
        CpuBlas.Sgemm(false, true, rows, outF, inF, 1f, x, inF, w, inF, 0f, y, outF, threads);
        if (b is not null) ForRows(rows, threads, r => TensorPrimitives.Add(y.AsSpan(r * outF, outF), b, y.AsSpan(r * outF, outF)));
    }

    /// <summary>
    /// Linear backward: dx ← dy·W (added when <paramref name="accumulateDx"/>, else overwritten; skipped
    /// when dx is null), dW += dyᵀ·x, db += column sums of dy (skipped when db is null).
    /// </summary>
    public static void LinearBackward(float[] dy, float[] x, float[] w, int rows, int inF, int outF,
        float[]? dx, bool accumulateDx, float[] dw, float[]? db, int threads)
    {
        if (dx is not null) CpuBlas.Sgemm(false, false, rows, inF, outF, 1f, dy, outF, w, inF, accumulateDx ? 1f : 0f, dx, inF, threads);
        CpuBlas.Sgemm(true, false, outF, inF, rows, 1f, dy, outF, x, inF, 1f, dw, inF, threads);
        if (db is not null)
            ForRows(outF, threads, o =>
            {
                double s = 0;
                for (int r = 0; r < rows; r++) s += dy[r * outF + o];
                db[o] += (float)s;
            });
    }

    // ---- Multi-head self-attention core (softmax(q·kᵀ/√d)·v), heads read in place from [B·T, W] ----

    /// <summary>
    /// ctx ← softmax(q·kᵀ·scale)·v per (image, head) for q, k, v, ctx [B·T, H·D] (head h in columns
    /// h·D..h·D+D); saves the probabilities in <paramref name="probs"/> [B, H, T, T].
    /// </summary>
    public static void AttentionForward(float[] q, float[] k, float[] v, int batch, int seq, int heads, int headDim,
        float[] probs, float[] ctx, int threads)
    {
        int w = heads * headDim;
        float scale = (float)(1.0 / Math.Sqrt(headDim));
        ForRows(batch * heads * seq, threads, row =>
        {
            int i = row % seq, bh = row / seq, h = bh % heads, b = bh / heads;
            var p = probs.AsSpan(row * seq, seq);
            var qi = q.AsSpan((b * seq + i) * w + h * headDim, headDim);
            for (int j = 0; j < seq; j++) p[j] = TensorPrimitives.Dot(qi, k.AsSpan((b * seq + j) * w + h * headDim, headDim));
            SoftmaxForward(p, scale, p);
            var o = ctx.AsSpan((b * seq + i) * w + h * headDim, headDim);
            o.Clear();
            for (int j = 0; j < seq; j++) TensorPrimitives.MultiplyAdd(v.AsSpan((b * seq + j) * w + h * headDim, headDim), p[j], o, o);
        });
    }

    /// <summary>
    /// Attention backward from dctx [B·T, W] and the saved probabilities: dP = dctx·vᵀ, dv += Pᵀ·dctx,
    /// dS = softmax backward, dq += dS·k, dk += dSᵀ·q (all per image and head).
    /// </summary>
    public static void AttentionBackward(float[] dctx, float[] q, float[] k, float[] v, float[] probs, int batch, int seq, int heads, int headDim,
        float[] dq, float[] dk, float[] dv, int threads)
    {
        int w = heads * headDim;
        float scale = (float)(1.0 / Math.Sqrt(headDim));
        ForRows(batch * heads, threads, bh =>
        {
            int h = bh % heads, b = bh / heads;
            Span<float> ds = seq <= 1024 ? stackalloc float[seq] : new float[seq];
            Span<float> Row(float[] a, int t) => a.AsSpan((b * seq + t) * w + h * headDim, headDim);
            for (int i = 0; i < seq; i++)
            {
                var p = probs.AsSpan((bh * seq + i) * seq, seq);
                var dci = Row(dctx, i);
                for (int j = 0; j < seq; j++)
                {
                    ds[j] = TensorPrimitives.Dot(dci, Row(v, j));
                    var dvj = Row(dv, j);
                    TensorPrimitives.MultiplyAdd(dci, p[j], dvj, dvj);
                }
                SoftmaxBackward(p, ds, scale, ds);
                var dqi = Row(dq, i);
                var qi = Row(q, i);
                for (int j = 0; j < seq; j++)
                {
                    TensorPrimitives.MultiplyAdd(Row(k, j), ds[j], dqi, dqi);
                    var dkj = Row(dk, j);
                    TensorPrimitives.MultiplyAdd(qi, ds[j], dkj, dkj);
                }
            }
        });
    }
}
