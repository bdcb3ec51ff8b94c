using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// One-thread-per-element kernels. Each is a single IEEE operation per element (Axpy: a multiply
/// then an add), so results equal the CPU backend's bit for bit wherever the device does not
/// contract a multiply-add into an FMA.
/// </summary>
public static class ElementwiseKernels
{
    /// <summary>dst[i] ← a[i] + b[i].</summary>
    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst) => dst[i] = a[i] + b[i];

    /// <summary>dst[i] ← a[i] − b[i].</summary>
    public static void Sub(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst) => dst[i] = a[i] - b[i];

    /// <summary>dst[i] ← a[i] · b[i].</summary>
    public static void Mul(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst) => dst[i] = a[i] * b[i];

    /// <summary>dst[i] ← a[i] / b[i].</summary>
    public static void Div(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst) => dst[i] = a[i] / b[i];

    /// <summary>dst[i] ← a[i] · s.</summary>
    public static void Scale(Index1D i, ArrayView<float> a, float s, ArrayView<float> dst) => dst[i] = a[i] * s;

    /// <summary>y[i] ← x[i] · alpha + y[i].</summary>
    public static void Axpy(Index1D i, float alpha, ArrayView<float> x, ArrayView<float> y) => y[i] = x[i] * alpha + y[i];

    /// <summary>t[i] ← value.</summary>
    public static void Fill(Index1D i, ArrayView<float> t, float value) => t[i] = value;

    /// <summary>dst[i] ← src[i].</summary>
    public static void Copy(Index1D i, ArrayView<float> src, ArrayView<float> dst) => dst[i] = src[i];
}

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
