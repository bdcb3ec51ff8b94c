using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors;

/// <summary>
/// Argument checks of the <see cref="IBackend"/> ops, shared by every backend so that a bad call
/// fails the same way on the CPU and on a device. Each returns the sizes the op needs.
/// </summary>
internal static class OpShapes
{
    public static void SameLength(Tensor a, Tensor b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"length mismatch: {a} vs {b}");
    }

    /// <summary>Rows of <paramref name="x"/> read as rows of <paramref name="n"/> values.</summary>
    public static int RowCount(Tensor x, int n, string op)
    {
        if (n == 0 || x.Length % n != 0) throw new ArgumentException($"{op}: {x} is not made of rows of {n} values");
        return checked((int)(x.Length / n));
    }

    /// <summary>Elements per outer slice (line·inner) of a RankedBernoulliKeep over <paramref name="x"/>; 0 for an empty tensor.</summary>
    public static long RankLines(Tensor x, int line, int inner)
    {
        if (x.Length == 0) return 0;
        long span = (long)line * inner;
        if (line <= 0 || inner <= 0 || x.Length % span != 0)
            throw new ArgumentException($"RankedBernoulliKeep: {x} is not made of [{line}, {inner}] slices");
        return span;
    }

    /// <summary>A 2-D tensor's (rows, cols), or (1, length) for a 1-D one.</summary>
    public static (int Rows, int Cols) Matrix(Tensor t, string what) => t.Rank switch
    {
        1 => (1, t.Shape[0]),
        2 => (t.Rows, t.Cols),
        _ => throw new ArgumentException($"{what}: {t} is neither 1-D nor 2-D"),
    };

    /// <summary>(m, n, k = min(m, n)) of a valid <see cref="ILinearAlgebraOps.Svd"/> call.</summary>
    public static (int M, int N, int K) Svd(Tensor a, Tensor u, Tensor s, Tensor vt)
    {
        int m = a.Rows, n = a.Cols, k = Math.Min(m, n);
        if (u.Rank != 2 || u.Rows != m || u.Cols != k || s.Length != k || vt.Rank != 2 || vt.Rows != k || vt.Cols != n)
            throw new ArgumentException($"svd of {m}x{n}: u must be {m}x{k}, s {k}, vt {k}x{n}; got {u}, {s}, {vt}");
        return (m, n, k);
    }

    /// <summary>The order n of a valid <see cref="ILinearAlgebraOps.SymmetricEigen"/> call.</summary>
    public static int SymmetricEigen(Tensor a, Tensor eigenvalues, Tensor eigenvectors)
    {
        int n = a.Rows;
        if (a.Cols != n || eigenvalues.Length != n || eigenvectors.Rank != 2 || eigenvectors.Rows != n || eigenvectors.Cols != n)
            throw new ArgumentException($"symmetric_eigen: a must be square and eigenvalues {n}, eigenvectors {n}x{n}; got {a}, {eigenvalues}, {eigenvectors}");
        return n;
    }

    /// <summary>(n, rows of B) of a valid <see cref="ILinearAlgebraOps.CholeskySolve"/> call.</summary>
    public static (int N, int Rows) CholeskySolve(Tensor a, Tensor b)
    {
        int n = a.Rows;
        if (a.Cols != n || b.Cols != n)
            throw new ArgumentException($"cholesky solve: A must be square and B must have {n} columns, got A {a.Rows}x{a.Cols}, B {b.Rows}x{b.Cols}");
        return (n, b.Rows);
    }

    /// <summary>Blocks of a <see cref="IMergeOps.BlockDot"/> call.</summary>
    public static int BlockDot(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> ys, int blockLength, int dstLength)
    {
        long length = xs.Count > 0 ? xs[0].Length : 0;
        foreach (var t in xs.Concat(ys))
            if (t.Length != length) throw new ArgumentException($"block dot: length mismatch, {t} vs {length} elements");
        if (blockLength <= 0 || length % blockLength != 0)
            throw new ArgumentException($"block dot: block length {blockLength} does not divide {length}");
        int blocks = (int)(length / blockLength);
        if (dstLength < (long)blocks * xs.Count * ys.Count) throw new ArgumentException("block dot: destination too short");
        return blocks;
    }

    /// <summary>Column counts (source, destination) of a valid <see cref="ILinearAlgebraOps.CopyBlock"/> call.</summary>
    public static (int SrcCols, int DstCols) CopyBlock(Tensor src, int srcRow, int srcCol, Tensor dst, int dstRow, int dstCol, int rows, int cols)
    {
        var (srcRows, srcCols) = Matrix(src, "copy_block src");
        var (dstRows, dstCols) = Matrix(dst, "copy_block dst");
        if (ReferenceEquals(src, dst)) throw new ArgumentException("copy_block: src and dst must be different tensors");
        if (rows < 0 || cols < 0 || srcRow < 0 || srcCol < 0 || dstRow < 0 || dstCol < 0
            || srcRow + rows > srcRows || srcCol + cols > srcCols || dstRow + rows > dstRows || dstCol + cols > dstCols)
            throw new ArgumentException($"copy_block: {rows}x{cols} block at ({srcRow},{srcCol}) of {srcRows}x{srcCols} -> ({dstRow},{dstCol}) of {dstRows}x{dstCols} is out of range");
        return (srcCols, dstCols);
    }

    /// <summary>Rows of a <see cref="INeuralNetOps.LayerNorm"/> call over <c>gamma.Length</c> features.</summary>
    public static int LayerNorm(Tensor x, Tensor gamma, Tensor beta, Tensor dst)
    {
        int n = checked((int)gamma.Length);
        if (beta.Length != n) throw new ArgumentException($"layernorm: gamma has {n} values, beta {beta.Length}");
        SameLength(x, dst);
        return RowCount(x, n, "layernorm");
    }

    /// <summary>Rows of a <see cref="INeuralNetOps.LayerNormBackward"/> call over <c>gamma.Length</c> features.</summary>
    public static int LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        int n = checked((int)gamma.Length);
        if (dgamma.Length != n || dbeta.Length != n)
            throw new ArgumentException($"layernorm-backward: gamma has {n} values, dgamma {dgamma.Length}, dbeta {dbeta.Length}");
        SameLength(x, dy);
        SameLength(x, dx);
        return RowCount(x, n, "layernorm-backward");
    }

    /// <summary>(row length, rows) of a <see cref="INeuralNetOps.SoftmaxRowsBackward"/> call.</summary>
    public static (int N, int Rows) SoftmaxBackward(Tensor y, Tensor dy, Tensor dx)
    {
        SameLength(y, dy);
        SameLength(y, dx);
        int n = y.Rank == 0 ? 1 : y.Shape[^1];
        return (n, n == 0 ? 0 : checked((int)(y.Length / n)));
    }

    /// <summary>Checks an elementwise backward (x, dy, dx of one length).</summary>
    public static void Elementwise3(Tensor x, Tensor dy, Tensor dx)
    {
        SameLength(x, dy);
        SameLength(x, dx);
    }

    /// <summary>(row length, period) of an <see cref="INeuralNetOps.AddRowVector"/> call.</summary>
    public static (int N, int Period) AddRowVector(Tensor x, Tensor rows, Tensor dst)
    {
        if (rows.Rank > 2) throw new ArgumentException($"add-row-vector: rows must be [n] or [p, n], got {rows}");
        int n = rows.Rank == 2 ? rows.Cols : checked((int)rows.Length);
        RowCount(x, n, "add-row-vector");
        SameLength(x, dst);
        return (n, rows.Rank == 2 ? rows.Rows : 1);
    }

    /// <summary>(row length, rows) of a <see cref="INeuralNetOps.SoftmaxRows"/> call.</summary>
    public static (int N, int Rows) Softmax(Tensor x, Tensor dst, Tensor? bias, int rowsPerBiasRow)
    {
        SameLength(x, dst);
        int n = x.Rank == 0 ? 1 : x.Shape[^1];
        int rows = n == 0 ? 0 : checked((int)(x.Length / n));
        if (bias is not null && (rowsPerBiasRow < 1 || rows % rowsPerBiasRow != 0 || bias.Length != (long)rows / rowsPerBiasRow * n))
            throw new ArgumentException($"softmax: bias {bias} does not give one row of {n} per {rowsPerBiasRow} of {rows} rows");
        return (n, rows);
    }

    /// <summary>(batch, m, n, k) of a <see cref="ILinearAlgebraOps.GemmStridedBatched"/> call.</summary>
    public static (int Batch, int M, int N, int K) BatchedGemm(Tensor a, bool transA, Tensor b, bool transB, Tensor c)
    {
        if (a.Rank != 3 || b.Rank != 3 || c.Rank != 3)
            throw new ArgumentException($"batched gemm needs rank-3 tensors, got {a}, {b}, {c}");
        int batch = c.Shape[0], m = c.Shape[1], n = c.Shape[2];
        int k = transA ? a.Shape[1] : a.Shape[2];
        if (a.Shape[0] != batch || b.Shape[0] != batch || (transA ? a.Shape[2] : a.Shape[1]) != m ||
            (transB ? b.Shape[2] : b.Shape[1]) != k || (transB ? b.Shape[1] : b.Shape[2]) != n)
            throw new ArgumentException($"batched gemm shape mismatch: A {a}, B {b}, C {c} (transA {transA}, transB {transB})");
        return (batch, m, n, k);
    }

    /// <summary>Checks a <see cref="INeuralNetOps.GatherRows"/> call; returns the row length.</summary>
    public static int Gather(Tensor table, ReadOnlySpan<int> rows, Tensor dst)
    {
        int n = table.Cols, count = table.Rows;
        if (dst.Length != (long)rows.Length * n) throw new ArgumentException($"gather: dst {dst} does not hold {rows.Length} rows of {n}");
        foreach (int r in rows)
            if ((uint)r >= (uint)count) throw new ArgumentOutOfRangeException(nameof(rows), $"gather: row index {r} outside table of {count} rows");
        return n;
    }

    /// <summary>Checks a <see cref="INeuralNetOps.ScatterAddRows"/> call (distinct, in-range indices); returns the row length.</summary>
    public static int Scatter(Tensor src, ReadOnlySpan<int> rows, Tensor dst)
    {
        if (dst.Rank != 2) throw new ArgumentException($"scatter-add-rows: dst must be 2-D, got {dst}");
        int n = dst.Cols, count = dst.Rows;
        if (src.Length != (long)rows.Length * n) throw new ArgumentException($"scatter-add-rows: src {src} does not hold {rows.Length} rows of {n}");
        var seen = new HashSet<int>(rows.Length);
        foreach (int r in rows)
        {
            if ((uint)r >= (uint)count) throw new ArgumentOutOfRangeException(nameof(rows), $"scatter-add-rows: row index {r} outside table of {count} rows");
            if (!seen.Add(r)) throw new ArgumentException($"scatter-add-rows: row index {r} appears twice");
        }
        return n;
    }

    /// <summary>Validates a patch extraction of <paramref name="images"/> [B, C, H, W] into <paramref name="dst"/>.</summary>
    public static PatchShape Patchify(Tensor images, int patch, int leadingRows, Tensor dst)
    {
        if (images.Rank != 4) throw new ArgumentException($"patchify: images must be [B, C, H, W], got {images}");
        if (patch < 1 || leadingRows < 0) throw new ArgumentException($"patchify: patch {patch}, leading rows {leadingRows}");
        var s = new PatchShape(images.Shape[0], images.Shape[1], images.Shape[2], images.Shape[3], patch, leadingRows);
        if (dst.Length != (long)s.Batch * s.RowsPerImage * s.RowLength)
            throw new ArgumentException($"patchify: dst {dst} must hold {s.Batch}×{s.RowsPerImage} rows of {s.RowLength}");
        return s;
    }

    /// <summary>Validates a head split of <paramref name="tokens"/> (B·T rows of H·D) into <paramref name="split"/> ([B·H, T, D]).</summary>
    public static HeadShape Heads(Tensor tokens, Tensor split, int heads, string op)
    {
        if (split.Rank != 3 || heads < 1 || split.Shape[0] % heads != 0)
            throw new ArgumentException($"{op}: per-head tensor must be [B·H, T, D] with H = {heads}, got {split}");
        SameLength(tokens, split);
        return new HeadShape(split.Shape[0] / heads, split.Shape[1], heads, split.Shape[2]);
    }
}
