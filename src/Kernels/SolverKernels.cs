using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// The glue around dense float64 solvers (cuSOLVER) that take column-major matrices: widening a
/// row-major float32 matrix into float64 with or without a transpose, narrowing back, shifting the
/// diagonal, and checking a Cholesky factor's pivots. A row-major rows×cols array is, unchanged, the
/// column-major cols×rows matrix; "transposed" here means the column-major rows×cols matrix.
/// </summary>
public static class SolverKernels
{
    /// <summary>
    /// dst ← src in float64 for the row-major rows×cols <paramref name="src"/>: element (i, j) goes to
    /// dst[i·cols + j] (the same memory order, i.e. column-major srcᵀ), or with
    /// <paramref name="transpose"/> ≠ 0 to dst[i + j·rows] (column-major src). One thread per element.
    /// </summary>
    public static void ToDouble(Index1D t, ArrayView<float> src, ArrayView<double> dst, int rows, int cols, int transpose)
    {
        int i = t / cols, j = t - i * cols;
        dst[transpose != 0 ? i + (long)j * rows : t] = src[t];
    }

    /// <summary>
    /// dst ← src rounded to float32 for the row-major rows×cols <paramref name="dst"/>: element (i, j)
    /// comes from src[i·cols + j], or with <paramref name="transpose"/> ≠ 0 from src[i + j·rows] (src
    /// column-major rows×cols). One thread per element.
    /// </summary>
    public static void ToFloat(Index1D t, ArrayView<double> src, ArrayView<float> dst, int rows, int cols, int transpose)
    {
        int i = t / cols, j = t - i * cols;
        dst[t] = (float)src[transpose != 0 ? i + (long)j * rows : t];
    }

    /// <summary>a[t, t] += shift for the n×n matrix <paramref name="a"/> (either layout); one thread per diagonal element.</summary>
    public static void AddToDiagonal(Index1D t, ArrayView<double> a, int n, double shift) => a[t * (long)(n + 1)] += shift;

    /// <summary>
    /// bad[0] ← 1 when a diagonal element of the n×n Cholesky factor <paramref name="a"/> is not a finite
    /// positive number (NaN included), left alone otherwise; one thread per diagonal element.
    /// </summary>
    public static void FlagBadPivots(Index1D t, ArrayView<double> a, int n, ArrayView<int> bad)
    {
        double d = a[t * (long)(n + 1)];
        if (!(d > 0) || d == double.PositiveInfinity) bad[0] = 1;
    }
}
