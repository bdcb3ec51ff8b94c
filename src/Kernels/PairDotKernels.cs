using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>Layout of a <see cref="PairDotKernels.BlockPairDot"/> launch.</summary>
public struct BlockDotShape
{
    /// <summary>Number of stacked x vectors.</summary>
    public int Nx;
    /// <summary>Number of stacked y vectors.</summary>
    public int Ny;
    /// <summary>Elements per block.</summary>
    public int BlockLength;
    /// <summary>Elements per vector (the stride between stacked vectors).</summary>
    public long Length;
}

/// <summary>Dot products of every (x, y) pair per block, for AWD's per-row and per-tensor Grams.</summary>
public static class PairDotKernels
{
    /// <summary>
    /// Thread t = (block·Nx + i)·Ny + j writes Σ over the block's elements of xᵢ·yⱼ, accumulated in
    /// float64 in element order; x and y hold the vectors stacked with stride Length.
    /// </summary>
    public static void BlockPairDot(Index1D t, ArrayView<float> x, ArrayView<float> y, BlockDotShape s, ArrayView<double> dst)
    {
        int pair = t % (s.Nx * s.Ny), block = t / (s.Nx * s.Ny);
        int i = pair / s.Ny, j = pair % s.Ny;
        long xo = i * s.Length + (long)block * s.BlockLength, yo = j * s.Length + (long)block * s.BlockLength;
        double acc = 0;
        for (int e = 0; e < s.BlockLength; e++) acc += (double)x[xo + e] * y[yo + e];
        dst[t] = acc;
    }
}
