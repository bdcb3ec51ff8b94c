using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>Shape of a <see cref="MatrixKernels.CopyBlock"/> launch (row-major matrices).</summary>
public struct BlockCopyShape
{
    /// <summary>Columns of the source matrix.</summary>
    public int SrcCols;
    /// <summary>Columns of the destination matrix.</summary>
    public int DstCols;
    /// <summary>Block origin in the source.</summary>
    public int SrcRow, SrcCol;
    /// <summary>Block origin in the destination.</summary>
    public int DstRow, DstCol;
    /// <summary>Block width.</summary>
    public int Cols;
}

/// <summary>Row-major matrix kernels: block copies and column scaling (the spectral methods' glue).</summary>
public static class MatrixKernels
{
    /// <summary>Thread t copies block element (t / Cols, t % Cols) from src to dst.</summary>
    public static void CopyBlock(Index1D t, ArrayView<float> src, ArrayView<float> dst, BlockCopyShape s)
    {
        int i = t / s.Cols, j = t % s.Cols;
        dst[(long)(s.DstRow + i) * s.DstCols + s.DstCol + j] = src[(long)(s.SrcRow + i) * s.SrcCols + s.SrcCol + j];
    }

    /// <summary>dst[i, j] = a[i, j]·scales[j] for a matrix with <paramref name="cols"/> columns.</summary>
    public static void ScaleColumns(Index1D t, ArrayView<float> a, ArrayView<float> scales, int cols, ArrayView<float> dst) =>
        dst[t] = a[t] * scales[t % cols];
}
