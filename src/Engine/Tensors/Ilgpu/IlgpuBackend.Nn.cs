using ILGPU;
using ILGPU.Runtime;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>The transformer forward ops of the device backend, one <see cref="NnKernels"/> launch each.</summary>
public sealed partial class IlgpuBackend
{
    /// <inheritdoc />
    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor dst)
    {
        int n = checked((int)gamma.Length);
        if (beta.Length != n) throw new ArgumentException($"layernorm: gamma has {n} values, beta {beta.Length}");
        int rows = RowCount(x, n, "layernorm");
        SameLength(x, dst);
        if (rows > 0) _kernels.LayerNorm(rows, View(x), View(gamma), View(beta), View(dst), n, eps);
    }

    /// <inheritdoc />
    public void AddRowVector(Tensor x, Tensor rows, Tensor dst)
    {
        if (rows.Rank > 2) throw new ArgumentException($"add-row-vector: rows must be [n] or [p, n], got {rows}");
        int n = rows.Rank == 2 ? rows.Cols : checked((int)rows.Length);
        int period = rows.Rank == 2 ? rows.Rows : 1;
        RowCount(x, n, "add-row-vector");
        SameLength(x, dst);
        if (x.Length > 0) _kernels.AddRowVector(Count(x), View(x), View(rows), View(dst), n, period);
    }

    /// <inheritdoc />
    public void Gelu(Tensor x, Tensor dst) => Map(x, dst, _kernels.Gelu);

    /// <inheritdoc />
    public void QuickGelu(Tensor x, Tensor dst) => Map(x, dst, _kernels.QuickGelu);

    /// <inheritdoc />
    public void Tanh(Tensor x, Tensor dst) => Map(x, dst, _kernels.Tanh);

    /// <inheritdoc />
    public void SoftmaxRows(Tensor x, Tensor dst, float scale = 1f, Tensor? bias = null, int rowsPerBiasRow = 1)
    {
        SameLength(x, dst);
        int n = x.Rank == 0 ? 1 : x.Shape[^1];
        int rows = n == 0 ? 0 : checked((int)(x.Length / n));
        if (bias is not null && (rowsPerBiasRow < 1 || rows % rowsPerBiasRow != 0 || bias.Length != (long)rows / rowsPerBiasRow * n))
            throw new ArgumentException($"softmax: bias {bias} does not give one row of {n} per {rowsPerBiasRow} of {rows} rows");
        if (rows == 0) return;
        _kernels.SoftmaxRows(rows, View(x), bias is null ? View(x) : View(bias), View(dst), n, scale, Math.Max(1, rowsPerBiasRow), bias is null ? 0 : 1);
    }

    /// <inheritdoc />
    public void GemmStridedBatched(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        if (a.Rank != 3 || b.Rank != 3 || c.Rank != 3)
            throw new ArgumentException($"batched gemm needs rank-3 tensors, got {a}, {b}, {c}");
        int batch = c.Shape[0], m = c.Shape[1], n = c.Shape[2];
        int k = transA ? a.Shape[1] : a.Shape[2];
        if (a.Shape[0] != batch || b.Shape[0] != batch || (transA ? a.Shape[2] : a.Shape[1]) != m ||
            (transB ? b.Shape[2] : b.Shape[1]) != k || (transB ? b.Shape[1] : b.Shape[2]) != n)
            throw new ArgumentException($"batched gemm shape mismatch: A {a}, B {b}, C {c} (transA {transA}, transB {transB})");
        if (c.Length > 0) _kernels.GemmStridedBatched(Count(c), View(a), View(b), View(c), new BatchedGemmShape(m, n, k, transA, transB, alpha, beta));
    }

    /// <inheritdoc />
    public void SplitHeads(Tensor x, Tensor dst, int heads)
    {
        var s = CpuBackend.CheckHeads(x, dst, heads, "split-heads");
        if (x.Length > 0) _kernels.SplitHeads(Count(x), View(x), View(dst), s);
    }

    /// <inheritdoc />
    public void MergeHeads(Tensor x, Tensor dst, int heads)
    {
        var s = CpuBackend.CheckHeads(dst, x, heads, "merge-heads");
        if (x.Length > 0) _kernels.MergeHeads(Count(x), View(x), View(dst), s);
    }

    /// <inheritdoc />
    public void GatherRows(Tensor table, ReadOnlySpan<int> rows, Tensor dst)
    {
        int n = table.Cols, count = table.Rows;
        if (dst.Length != (long)rows.Length * n) throw new ArgumentException($"gather: dst {dst} does not hold {rows.Length} rows of {n}");
        foreach (int r in rows)
            if ((uint)r >= (uint)count) throw new ArgumentOutOfRangeException(nameof(rows), $"gather: row index {r} outside table of {count} rows");
        if (dst.Length == 0) return;
        using var indices = _accelerator.Allocate1D<int>(rows.Length);
        indices.View.AsContiguous().CopyFromCPU<int, ArrayView<int>>(rows);
        _kernels.GatherRows(Count(dst), View(table), indices.View, View(dst), n);
    }

    /// <inheritdoc />
    public void Patchify(Tensor images, int patch, int leadingRows, Tensor dst)
    {
        var s = CpuBackend.PatchShapeOf(images, patch, leadingRows, dst);
        if (dst.Length > 0) _kernels.Patchify(Count(dst), View(images), View(dst), s);
    }

    private void Map(Tensor x, Tensor dst, Action<Index1D, ArrayView<float>, ArrayView<float>> kernel)
    {
        SameLength(x, dst);
        if (x.Length > 0) kernel(Count(x), View(x), View(dst));
    }

    private static int RowCount(Tensor x, int n, string op)
    {
        if (n == 0 || x.Length % n != 0) throw new ArgumentException($"{op}: {x} is not made of rows of {n} values");
        return checked((int)(x.Length / n));
    }
}
