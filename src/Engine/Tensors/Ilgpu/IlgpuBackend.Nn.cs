using ILGPU;
using ILGPU.Runtime;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>The transformer forward ops of the device backend, one <see cref="NnKernels"/> launch each.</summary>
public sealed partial class IlgpuBackend
{
    /// <inheritdoc />
    public void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor dst)
    {
        int rows = OpShapes.LayerNorm(x, gamma, beta, dst), n = checked((int)gamma.Length);
        if (rows > 0) _kernels.LayerNorm(rows, View(x), View(gamma), View(beta), View(dst), n, eps);
    }

    /// <inheritdoc />
    public void AddRowVector(Tensor x, Tensor rows, Tensor dst)
    {
        var (n, period) = OpShapes.AddRowVector(x, rows, dst);
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
        var (n, rows) = OpShapes.Softmax(x, dst, bias, rowsPerBiasRow);
        if (rows == 0) return;
        _kernels.SoftmaxRows(rows, View(x), bias is null ? View(x) : View(bias), View(dst), n, scale, Math.Max(1, rowsPerBiasRow), bias is null ? 0 : 1);
    }

    /// <inheritdoc />
    public void GemmStridedBatched(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        var (batch, m, n, k) = OpShapes.BatchedGemm(a, transA, b, transB, c);
        if (c.Length == 0) return;
        if (UseCublas && k > 0)
            _cublas!.GemmStridedBatched(transA, transB, batch, m, n, k, alpha, Pointer(a), a.Shape[2], (long)a.Shape[1] * a.Shape[2],
                Pointer(b), b.Shape[2], (long)b.Shape[1] * b.Shape[2], beta, Pointer(c));
        else _kernels.GemmStridedBatched(Count(c), View(a), View(b), View(c), new BatchedGemmShape(m, n, k, transA, transB, alpha, beta));
    }

    /// <inheritdoc />
    public void SplitHeads(Tensor x, Tensor dst, int heads)
    {
        var s = OpShapes.Heads(x, dst, heads, "split-heads");
        if (x.Length > 0) _kernels.SplitHeads(Count(x), View(x), View(dst), s);
    }

    /// <inheritdoc />
    public void MergeHeads(Tensor x, Tensor dst, int heads)
    {
        var s = OpShapes.Heads(dst, x, heads, "merge-heads");
        if (x.Length > 0) _kernels.MergeHeads(Count(x), View(x), View(dst), s);
    }

    /// <inheritdoc />
    public void GatherRows(Tensor table, ReadOnlySpan<int> rows, Tensor dst)
    {
        int n = OpShapes.Gather(table, rows, dst);
        if (dst.Length == 0) return;
        using var indices = RowIndices(rows);
        _kernels.GatherRows(Count(dst), View(table), View(indices).Cast<int>(), View(dst), n);
    }

    /// <inheritdoc />
    public void ScatterAddRows(Tensor src, ReadOnlySpan<int> rows, Tensor dst)
    {
        int n = OpShapes.Scatter(src, rows, dst);
        if (src.Length == 0) return;
        using var indices = RowIndices(rows);
        _kernels.ScatterAddRows(Count(src), View(src), View(indices).Cast<int>(), View(dst), n);
    }

    /// <summary>The row indices uploaded into a pooled tensor (an int has a float's size), not a fresh device allocation per call.</summary>
    private Tensor RowIndices(ReadOnlySpan<int> rows)
    {
        var indices = Empty(rows.Length);
        View(indices).Cast<int>().CopyFromCPU(rows);
        return indices;
    }

    /// <inheritdoc />
    public void Patchify(Tensor images, int patch, int leadingRows, Tensor dst)
    {
        var s = OpShapes.Patchify(images, patch, leadingRows, dst);
        if (dst.Length > 0) _kernels.Patchify(Count(dst), View(images), View(dst), s);
    }

    /// <inheritdoc />
    public void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, float eps, Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        int rows = OpShapes.LayerNormBackward(dy, x, gamma, dx, dgamma, dbeta), n = checked((int)gamma.Length);
        if (rows == 0) return;
        using var stats = Empty(2 * rows);
        _kernels.LayerNormBackwardRows(rows, View(dy), View(x), View(gamma), View(dx), View(stats), n, eps);
        _kernels.LayerNormBackwardColumns(n, View(dy), View(x), View(stats), View(dgamma), View(dbeta), rows, n);
    }

    /// <inheritdoc />
    public void AddRowVectorBackward(Tensor dy, Tensor dRows)
    {
        var (n, period) = OpShapes.AddRowVector(dy, dRows, dy);
        if (dRows.Length > 0) _kernels.AddRowVectorBackward(Count(dRows), View(dy), View(dRows), n, period, checked((int)(dy.Length / n)));
    }

    /// <inheritdoc />
    public void GeluBackward(Tensor x, Tensor dy, Tensor dx) => MapBackward(x, dy, dx, _kernels.GeluBackward);

    /// <inheritdoc />
    public void QuickGeluBackward(Tensor x, Tensor dy, Tensor dx) => MapBackward(x, dy, dx, _kernels.QuickGeluBackward);

    /// <inheritdoc />
    public void SoftmaxRowsBackward(Tensor y, Tensor dy, Tensor dx, float scale = 1f)
    {
        var (n, rows) = OpShapes.SoftmaxBackward(y, dy, dx);
        if (rows > 0) _kernels.SoftmaxRowsBackward(rows, View(y), View(dy), View(dx), n, scale);
    }

    private void MapBackward(Tensor x, Tensor dy, Tensor dx, Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> kernel)
    {
        OpShapes.Elementwise3(x, dy, dx);
        if (x.Length > 0) kernel(Count(x), View(x), View(dy), View(dx));
    }

    private void Map(Tensor x, Tensor dst, Action<Index1D, ArrayView<float>, ArrayView<float>> kernel)
    {
        SameLength(x, dst);
        if (x.Length > 0) kernel(Count(x), View(x), View(dst));
    }
}
