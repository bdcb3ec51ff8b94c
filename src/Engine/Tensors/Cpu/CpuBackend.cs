using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>
/// The host backend: float arrays, System.Numerics.Tensors SIMD, work split across threads in
/// fixed-size chunks (results never depend on the thread count), GEMM through <see cref="CpuBlas"/>.
/// </summary>
public sealed partial class CpuBackend : IBackend
{
    internal const int Chunk = 1 << 16;
    private readonly ParallelOptions _parallel;
    private readonly Lazy<CpuLinearAlgebra> _linearAlgebra;

    /// <summary>Creates a CPU backend using up to <paramref name="threads"/> threads (0 = all cores).</summary>
    /// <param name="threads">Worker threads (0 = all cores).</param>
    /// <param name="lapack">SVD/eigensolver provider; null reads <c>TASKMERGE_LAPACK</c> (default auto) on first use.</param>
    public CpuBackend(int threads = 0, LapackProvider? lapack = null)
    {
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = Threads };
        _linearAlgebra = new(() => CpuLinearAlgebra.Create(lapack ?? CpuLinearAlgebra.ProviderFromEnvironment(Environment.GetEnvironmentVariable)));
    }

    /// <summary>A process-wide instance using all cores.</summary>
    public static CpuBackend Shared { get; } = new();

    /// <summary>Worker threads used by ops.</summary>
    public int Threads { get; }

    /// <summary>The SVD/eigensolver provider (resolved, and native LAPACK loaded, on first use).</summary>
    public CpuLinearAlgebra LinearAlgebra => _linearAlgebra.Value;

    /// <inheritdoc />
    public string Name => $"cpu ({Threads} threads)";

    internal static float[] Data(Tensor t) => t.Storage switch
    {
        float[] a => a,
        PooledArray { Data: { } a } => a,
        _ => throw new ArgumentException($"{t} does not live on the CPU backend"),
    };

    /// <summary>Storage of a tensor whose array came from <see cref="HostArrayPool"/> and goes back there on release.</summary>
    private sealed class PooledArray(float[] data)
    {
        public float[]? Data = data;
    }

    /// <summary>The host array behind a CPU tensor (no copy).</summary>
    public static Span<float> Span(Tensor t) => Data(t).AsSpan(0, checked((int)t.Length));

    /// <summary>Wraps an existing host array (no copy); its length must match the shape.</summary>
    public Tensor Wrap(float[] data, params int[] shape)
    {
        var t = new Tensor(this, shape, data);
        if (t.Length != data.Length) throw new ArgumentException("array length does not match shape");
        return t;
    }

    /// <inheritdoc />
    public Tensor Empty(params int[] shape) => new(this, shape, new PooledArray(HostArrayPool.Rent(checked((int)Count(shape)))));

    /// <inheritdoc />
    public Tensor Zeros(params int[] shape)
    {
        var t = Empty(shape);
        Fill(t, 0f);
        return t;
    }

    private static long Count(int[] shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }

    /// <inheritdoc />
    public Tensor FromHost(float[] values, params int[] shape) => Wrap(values, shape);

    /// <inheritdoc />
    public StagedTensor Stage(int[] shape, HostFill fill)
    {
        var values = HostArrayPool.Rent(checked((int)Count(shape)));
        try
        {
            fill(values);
        }
        catch
        {
            HostArrayPool.Return(values);
            throw;
        }
        return new PooledStagedTensor(this, shape, values);
    }

    /// <summary>A filled pooled array, adopted by the tensor it becomes (and so back to the pool on its release).</summary>
    private sealed class PooledStagedTensor(CpuBackend backend, int[] shape, float[] values) : StagedTensor(shape)
    {
        private protected override Tensor TakeCore() => new(backend, Shape, new PooledArray(values));

        private protected override void ReleaseCore() => HostArrayPool.Return(values);
    }

    /// <inheritdoc />
    public float[] DetachToHost(Tensor t)
    {
        var a = Data(t);
        if (a.Length != t.Length) a = Span(t).ToArray();
        else if (t.Storage is PooledArray p) p.Data = null;
        t.Dispose();
        return a;
    }

    /// <inheritdoc />
    public void Upload(ReadOnlySpan<float> src, Tensor dst) => src.CopyTo(Span(dst));

    /// <inheritdoc />
    public void Download(Tensor src, Span<float> dst) => Span(src).CopyTo(dst);

    /// <inheritdoc />
    public void Release(Tensor t)
    {
        if (t.Storage is PooledArray { Data: { } a } p)
        {
            p.Data = null;
            HostArrayPool.Return(a);
        }
    }

    /// <inheritdoc />
    public void Copy(Tensor src, Tensor dst) => ForChunks(src.Length, (s, n) => Data(src).AsSpan(s, n).CopyTo(Data(dst).AsSpan(s, n)));

    /// <inheritdoc />
    public void Fill(Tensor t, float value) => ForChunks(t.Length, (s, n) => Data(t).AsSpan(s, n).Fill(value));

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor dst) =>
        Binary(a, b, dst, static (x, y, d) => TensorPrimitives.Add(x, y, d));

    /// <inheritdoc />
    public void Sub(Tensor a, Tensor b, Tensor dst) =>
        Binary(a, b, dst, static (x, y, d) => TensorPrimitives.Subtract(x, y, d));

    /// <inheritdoc />
    public void Mul(Tensor a, Tensor b, Tensor dst) =>
        Binary(a, b, dst, static (x, y, d) => TensorPrimitives.Multiply(x, y, d));

    /// <inheritdoc />
    public void Div(Tensor a, Tensor b, Tensor dst) =>
        Binary(a, b, dst, static (x, y, d) => TensorPrimitives.Divide(x, y, d));

    /// <inheritdoc />
    public void Scale(Tensor a, float s, Tensor dst)
    {
        SameLength(a, dst);
        ForChunks(a.Length, (o, n) => TensorPrimitives.Multiply(Data(a).AsSpan(o, n), s, Data(dst).AsSpan(o, n)));
    }

    /// <inheritdoc />
    public void Axpy(float alpha, Tensor x, Tensor y)
    {
        SameLength(x, y);
        ForChunks(x.Length, (o, n) =>
        {
            var ys = Data(y).AsSpan(o, n);
            TensorPrimitives.MultiplyAdd(Data(x).AsSpan(o, n), alpha, ys, ys);
        });
    }

    /// <inheritdoc />
    public double Sum(Tensor x) => Reduce(x.Length, (o, n) => Reductions.Sum(Data(x).AsSpan(o, n)));

    /// <inheritdoc />
    public double SumAbs(Tensor x) => Reduce(x.Length, (o, n) => Reductions.SumAbs(Data(x).AsSpan(o, n)));

    /// <inheritdoc />
    public double SumSquares(Tensor x) => Reduce(x.Length, (o, n) => Reductions.Dot(Data(x).AsSpan(o, n), Data(x).AsSpan(o, n)));

    /// <inheritdoc />
    public double Dot(Tensor a, Tensor b)
    {
        SameLength(a, b);
        return Reduce(a.Length, (o, n) => Reductions.Dot(Data(a).AsSpan(o, n), Data(b).AsSpan(o, n)));
    }

    /// <inheritdoc />
    public void BlockDot(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> ys, int blockLength, Span<double> dst)
    {
        int nx = xs.Count, ny = ys.Count;
        int blocks = OpShapes.BlockDot(xs, ys, blockLength, dst.Length), chunksPerBlock = ChunkCount(blockLength), pairs = nx * ny;
        bool gram = ReferenceEquals(xs, ys);
        var a = xs.Select(Data).ToArray();
        var b = ys.Select(Data).ToArray();
        var partial = new double[(long)blocks * chunksPerBlock * pairs];
        Parallel.For(0, blocks * chunksPerBlock, _parallel, w =>
        {
            int block = w / chunksPerBlock;
            var (o, n) = ChunkRange(w % chunksPerBlock, blockLength);
            CpuKernels.PairDots(a, b, gram, (int)((long)block * blockLength + o), n, partial.AsSpan(w * pairs, pairs));
        });
        dst[..(blocks * pairs)].Clear();
        for (int w = 0; w < blocks * chunksPerBlock; w++)
        {
            var into = dst.Slice(w / chunksPerBlock * pairs, pairs);
            for (int p = 0; p < pairs; p++) into[p] += partial[(long)w * pairs + p];
        }
    }

    /// <inheritdoc />
    public float MaxAbs(Tensor x)
    {
        if (x.Length == 0) return 0f;
        int chunks = ChunkCount(x.Length);
        var partial = new float[chunks];
        Parallel.For(0, chunks, _parallel, c =>
        {
            var (o, n) = ChunkRange(c, x.Length);
            partial[c] = TensorPrimitives.MaxMagnitude(Data(x).AsSpan(o, n)) is var m ? MathF.Abs(m) : 0f;
        });
        return TensorPrimitives.Max(partial);
    }

    /// <inheritdoc />
    public void KeepTopKMagnitude(Tensor x, long k) => MagnitudeSelect.KeepTopK(Data(x), k, this);

    /// <inheritdoc />
    public void BernoulliKeep(Tensor x, float keepProbability, ulong seed, ulong stream) =>
        ForChunks(x.Length, (o, n) =>
        {
            var s = Data(x).AsSpan(o, n);
            int i = 0;
            if (PhiloxSimd.IsSupported)
                for (; i + 16 <= s.Length; i += 16)
                {
                    var v = Vector512.Create(s.Slice(i, 16));
                    (v & PhiloxSimd.KeepMask(seed, stream, (ulong)(o + i), keepProbability)).CopyTo(s.Slice(i, 16));
                }
            for (; i < s.Length; i++)
                if (!(CounterRng.Uniform(seed, stream, (ulong)(o + i)) < keepProbability)) s[i] = 0f;
        });

    /// <inheritdoc />
    public void RankedBernoulliKeep(Tensor x, int line, int inner, double pLow, double pHigh, ulong seed, ulong stream)
    {
        long span = OpShapes.RankLines(x, line, inner);
        if (span == 0) return;
        var data = Data(x);
        long lines = x.Length / line;
        Parallel.For(0, lines, _parallel, () => (new int[line], new uint[line], new bool[line], new int[line]), (l, _, scratch) =>
        {
            var (order, keys, keep, swap) = scratch;
            long first = l / inner * span + l % inner;
            for (int j = 0; j < line; j++) keys[j] = RankKey(data[first + (long)j * inner]);
            MagnitudeRank.SortAscending(keys, order, swap);
            for (int r = 0; r < line; r++)
            {
                long index = first + (long)order[r] * inner;
                keep[order[r]] = CounterRng.Uniform(seed, stream, (ulong)index) < RandomKernels.RankKeepProbability(r, line, pLow, pHigh);
            }
            for (int j = 0; j < line; j++)
                if (!keep[j]) data[first + (long)j * inner] = 0f;
            return scratch;
        }, _ => { });
    }

    /// <summary>
    /// |v| as a key whose unsigned order is <see cref="float.CompareTo(float)"/>'s order of magnitudes (NaN below
    /// every number), so <see cref="RankedBernoulliKeep"/> ranks as a comparison sort of the magnitudes would.
    /// </summary>
    private static uint RankKey(float v)
    {
        float m = Math.Abs(v);
        return float.IsNaN(m) ? 0u : BitConverter.SingleToUInt32Bits(m) + 1;
    }

    /// <inheritdoc />
    public void FillNormal(Tensor t, ulong seed, ulong stream) =>
        ForChunks(t.Length, (o, n) =>
        {
            var s = Data(t).AsSpan(o, n);
            for (int i = 0; i < s.Length; i++) s[i] = CounterRng.Normal(seed, stream, (ulong)(o + i));
        });

    /// <inheritdoc />
    public void SignConsensus(IReadOnlyList<Tensor> weighted, ReadOnlySpan<float> weights, Tensor mixed, Tensor divisor)
    {
        foreach (var w in weighted) SameLength(w, mixed);
        SameLength(mixed, divisor);
        var ws = weights.ToArray();
        var arrays = weighted.Select(Data).ToArray();
        ForChunks(mixed.Length, (o, n) => CpuKernels.SignConsensus(arrays, ws, o, n, Data(mixed), Data(divisor)));
    }

    /// <inheritdoc />
    public void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, int step, Optim.AdamSettings settings)
    {
        SameLength(param, grad);
        SameLength(param, m);
        SameLength(param, v);
        ForChunks(param.Length, (o, n) => Optim.AdamStep.Apply(Data(param).AsSpan(o, n), Data(grad).AsSpan(o, n),
            Data(m).AsSpan(o, n), Data(v).AsSpan(o, n), step, settings));
    }

    /// <inheritdoc />
    public void Gemm(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        int m = transA ? a.Cols : a.Rows, k = transA ? a.Rows : a.Cols;
        int kb = transB ? b.Cols : b.Rows, n = transB ? b.Rows : b.Cols;
        if (k != kb || c.Rows != m || c.Cols != n)
            throw new ArgumentException($"gemm shape mismatch: op(A) {m}x{k}, op(B) {kb}x{n}, C {c.Rows}x{c.Cols}");
        CpuBlas.Sgemm(transA, transB, m, n, k, alpha, Data(a), a.Cols, Data(b), b.Cols, beta, Data(c), n, Threads);
    }

    /// <inheritdoc />
    public void Syrk(Tensor a, bool transA, Tensor c, float alpha = 1f, float beta = 0f)
    {
        int n = transA ? a.Cols : a.Rows, k = transA ? a.Rows : a.Cols;
        if (c.Rows != n || c.Cols != n) throw new ArgumentException($"syrk: C must be {n}x{n}");
        CpuBlas.Ssyrk(transA, n, k, alpha, Data(a), a.Cols, beta, Data(c), n, Threads);
    }

    /// <inheritdoc />
    public void Gemv(Tensor a, bool transA, Tensor x, Tensor y, float alpha = 1f, float beta = 0f)
    {
        int m = transA ? a.Cols : a.Rows, n = transA ? a.Rows : a.Cols;
        if (x.Length != n || y.Length != m) throw new ArgumentException($"gemv shape mismatch: op(A) {m}x{n}, x {x.Length}, y {y.Length}");
        CpuBlas.Sgemv(transA, a.Rows, a.Cols, alpha, Data(a), a.Cols, Data(x), beta, Data(y), Threads);
    }

    /// <inheritdoc />
    public void CopyBlock(Tensor src, int srcRow, int srcCol, Tensor dst, int dstRow, int dstCol, int rows, int cols)
    {
        var (srcCols, dstCols) = OpShapes.CopyBlock(src, srcRow, srcCol, dst, dstRow, dstCol, rows, cols);
        float[] s = Data(src), d = Data(dst);
        for (int i = 0; i < rows; i++)
            s.AsSpan((srcRow + i) * srcCols + srcCol, cols).CopyTo(d.AsSpan((dstRow + i) * dstCols + dstCol, cols));
    }

    /// <inheritdoc />
    public void ScaleColumns(Tensor a, Tensor scales, Tensor dst)
    {
        SameLength(a, dst);
        int rows = a.Rows, cols = a.Cols;
        if (scales.Length != cols) throw new ArgumentException($"scale_columns: {scales.Length} scales for {cols} columns");
        float[] x = Data(a), sc = Data(scales), y = Data(dst);
        Parallel.For(0, rows, _parallel, i =>
            TensorPrimitives.Multiply(x.AsSpan(i * cols, cols), sc.AsSpan(0, cols), y.AsSpan(i * cols, cols)));
    }

    /// <inheritdoc />
    public void Svd(Tensor a, Tensor u, Tensor s, Tensor vt)
    {
        var (m, n, _) = OpShapes.Svd(a, u, s, vt);
        LinearAlgebra.Svd(Span(a), m, n, Span(u), Span(s), Span(vt));
    }

    /// <inheritdoc />
    public void SymmetricEigen(Tensor a, Tensor eigenvalues, Tensor eigenvectors)
    {
        int n = OpShapes.SymmetricEigen(a, eigenvalues, eigenvectors);
        LinearAlgebra.SymmetricEigen(Span(a), n, Span(eigenvalues), Span(eigenvectors));
    }

    /// <inheritdoc />
    public bool CholeskySolve(Tensor a, double shift, Tensor b)
    {
        var (n, rows) = OpShapes.CholeskySolve(a, b);
        return CpuCholesky.Solve(Data(a), n, shift, Data(b), rows, _parallel);
    }

    /// <inheritdoc />
    public void Dispose() { }

    private static void SameLength(Tensor a, Tensor b) => OpShapes.SameLength(a, b);

    private void Binary(Tensor a, Tensor b, Tensor dst, SpanOp op)
    {
        SameLength(a, b);
        SameLength(a, dst);
        ForChunks(a.Length, (o, n) => op(Data(a).AsSpan(o, n), Data(b).AsSpan(o, n), Data(dst).AsSpan(o, n)));
    }

    private delegate void SpanOp(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d);

    internal static int ChunkCount(long length) => (int)((length + Chunk - 1) / Chunk);

    internal static (int Offset, int Count) ChunkRange(int chunk, long length)
    {
        long o = (long)chunk * Chunk;
        return ((int)o, (int)Math.Min(Chunk, length - o));
    }

    internal void ForChunks(long length, Action<int, int> body)
    {
        int chunks = ChunkCount(length);
        if (chunks <= 1) { if (length > 0) body(0, (int)length); return; }
        Parallel.For(0, chunks, _parallel, c => { var (o, n) = ChunkRange(c, length); body(o, n); });
    }

    internal void ForEachChunk(long length, Action<int, int, int> body)
    {
        int chunks = ChunkCount(length);
        Parallel.For(0, chunks, _parallel, c => { var (o, n) = ChunkRange(c, length); body(c, o, n); });
    }

    /// <summary>Sums per-chunk float64 partials in chunk order, so the result is thread-count independent.</summary>
    internal double Reduce(long length, Func<int, int, double> partialOf)
    {
        int chunks = ChunkCount(length);
        if (chunks == 0) return 0;
        var partial = new double[chunks];
        Parallel.For(0, chunks, _parallel, c => { var (o, n) = ChunkRange(c, length); partial[c] = partialOf(o, n); });
        double s = 0;
        foreach (double p in partial) s += p;
        return s;
    }
}

/// <summary>Float64-accumulating SIMD reductions over float spans.</summary>
internal static class Reductions
{
    /// <summary>LayerNorm statistics of a row: the mean and 1/√(σ² + eps) with the biased variance, in float64.</summary>
    public static (double Mean, double Rstd) RowMoments(ReadOnlySpan<float> row, float eps)
    {
        double mean = Sum(row) / row.Length, sq = 0;
        foreach (float v in row)
        {
            double c = v - mean;
            sq += c * c;
        }
        return (mean, 1.0 / Math.Sqrt(sq / row.Length + eps));
    }

    public static double Sum(ReadOnlySpan<float> x)
    {
        var acc = Vector256<double>.Zero;
        int i = 0;
        for (; i + 8 <= x.Length; i += 8)
        {
            var (lo, hi) = Vector256.Widen(Vector256.Create(x.Slice(i, 8)));
            acc += lo + hi;
        }
        double s = Vector256.Sum(acc);
        for (; i < x.Length; i++) s += x[i];
        return s;
    }

    public static double SumAbs(ReadOnlySpan<float> x)
    {
        var acc = Vector256<double>.Zero;
        int i = 0;
        for (; i + 8 <= x.Length; i += 8)
        {
            var (lo, hi) = Vector256.Widen(Vector256.Abs(Vector256.Create(x.Slice(i, 8))));
            acc += lo + hi;
        }
        double s = Vector256.Sum(acc);
        for (; i < x.Length; i++) s += Math.Abs(x[i]);
        return s;
    }

    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var acc0 = Vector256<double>.Zero;
        var acc1 = Vector256<double>.Zero;
        int i = 0;
        for (; i + 8 <= a.Length; i += 8)
        {
            var (alo, ahi) = Vector256.Widen(Vector256.Create(a.Slice(i, 8)));
            var (blo, bhi) = Vector256.Widen(Vector256.Create(b.Slice(i, 8)));
            acc0 = Vector256.FusedMultiplyAdd(alo, blo, acc0);
            acc1 = Vector256.FusedMultiplyAdd(ahi, bhi, acc1);
        }
        double s = Vector256.Sum(acc0 + acc1);
        for (; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }
}
