using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>Dimensions and scalars of C[M×N] ← alpha·op(A)·op(B) + beta·C on row-major storage.</summary>
public struct GemmShape
{
    /// <summary>Rows of op(A) and C.</summary>
    public int M;
    /// <summary>Columns of op(B) and C.</summary>
    public int N;
    /// <summary>Columns of op(A) = rows of op(B).</summary>
    public int K;
    /// <summary>Row strides of the stored A, B and C.</summary>
    public int Lda, Ldb, Ldc;
    /// <summary>Non-zero: op(A) = Aᵀ / op(B) = Bᵀ (ints, since kernel parameters must be blittable).</summary>
    public int TransA, TransB;
    /// <summary>Scale of the product.</summary>
    public float Alpha;
    /// <summary>Scale of the old C; 0 means C is not read.</summary>
    public float Beta;
    /// <summary>First row of C this launch computes (launches are split into bands of rows to respect the grid-Y limit).</summary>
    public int RowOffset;
}

/// <summary>Dimensions and scalars of y ← alpha·op(A)·x + beta·y for a stored Rows×Cols row-major A.</summary>
public struct GemvShape
{
    /// <summary>Rows of the stored A.</summary>
    public int Rows;
    /// <summary>Columns (row stride) of the stored A.</summary>
    public int Cols;
    /// <summary>Non-zero: op(A) = Aᵀ.</summary>
    public int TransA;
    /// <summary>Scale of the product.</summary>
    public float Alpha;
    /// <summary>Scale of the old y; 0 means y is not read.</summary>
    public float Beta;
}

/// <summary>
/// Matrix kernels for when cuBLAS is not available (ILGPU's CPU accelerator, or a CUDA box without
/// the library). Each output element sums its K products in ascending order, as the CPU backend does.
/// </summary>
public static class GemmKernels
{
    /// <summary>Largest tile edge; a launch uses square groups of tile×tile threads, tile ≤ this.</summary>
    public const int MaxTile = 16;

    /// <summary>
    /// Shared-memory tiled SGEMM: group (gx, gy) computes the tile×tile block of C at rows
    /// RowOffset + gy·tile.., columns gx·tile.., staging tile×tile blocks of op(A) and op(B) per step along K.
    /// Launch with grid (⌈N/tile⌉, rows/tile) and group (tile, tile), in bands of at most the device's
    /// grid-Y limit (65 535 on CUDA) of tile rows, each with its RowOffset. Addresses are 64-bit.
    /// </summary>
    public static void Sgemm(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmShape s)
    {
        var aTile = SharedMemory.Allocate<float>(MaxTile * MaxTile);
        var bTile = SharedMemory.Allocate<float>(MaxTile * MaxTile);
        int tile = Group.DimX, tx = Group.IdxX, ty = Group.IdxY;
        int row = s.RowOffset + Grid.IdxY * tile + ty, col = Grid.IdxX * tile + tx;
        float acc = 0f;
        for (int k0 = 0; k0 < s.K; k0 += tile)
        {
            int ka = k0 + tx, kb = k0 + ty;
            aTile[ty * MaxTile + tx] = row < s.M && ka < s.K ? (s.TransA != 0 ? a[(long)ka * s.Lda + row] : a[(long)row * s.Lda + ka]) : 0f;
            bTile[ty * MaxTile + tx] = kb < s.K && col < s.N ? (s.TransB != 0 ? b[(long)col * s.Ldb + kb] : b[(long)kb * s.Ldb + col]) : 0f;
            Group.Barrier();
            int steps = s.K - k0 < tile ? s.K - k0 : tile;
            for (int p = 0; p < steps; p++) acc += aTile[ty * MaxTile + p] * bTile[p * MaxTile + tx];
            Group.Barrier();
        }
        if (row < s.M && col < s.N)
        {
            long at = (long)row * s.Ldc + col;
            c[at] = s.Alpha * acc + (s.Beta == 0f ? 0f : s.Beta * c[at]);
        }
    }

    /// <summary>y[i] ← alpha·Σₚ op(A)[i,p]·x[p] + beta·y[i], float products summed in float64, p ascending.</summary>
    public static void Sgemv(Index1D i, ArrayView<float> a, ArrayView<float> x, ArrayView<float> y, GemvShape s)
    {
        int k = s.TransA != 0 ? s.Rows : s.Cols;
        double sum = 0;
        for (int p = 0; p < k; p++)
        {
            float product = (s.TransA != 0 ? a[p * s.Cols + i] : a[i * s.Cols + p]) * x[p];
            sum += product;
        }
        y[i] = s.Alpha * (float)sum + (s.Beta == 0f ? 0f : s.Beta * y[i]);
    }

    /// <summary>
    /// For an n×n row-major matrix whose upper triangle (with the diagonal) is valid, copies it onto
    /// the lower triangle: c[r,q] ← c[q,r] for r &gt; q. Completes a cuBLAS SYRK result.
    /// </summary>
    public static void MirrorUpperToLower(Index1D i, ArrayView<float> c, int n)
    {
        int r = i / n, q = i - r * n;
        if (r > q) c[i] = c[q * n + r];
    }
}
