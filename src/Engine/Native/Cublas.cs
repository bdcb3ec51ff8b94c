using System.Runtime.InteropServices;

namespace TaskMerge.Engine.Native;

/// <summary>cublasOperation_t.</summary>
internal enum CublasOperation { N = 0, T = 1 }

/// <summary>cublasFillMode_t (column-major triangle).</summary>
internal enum CublasFillMode { Lower = 0, Upper = 1 }

/// <summary>cublasMath_t.</summary>
internal enum CublasMath { Default = 0, Tf32TensorOp = 3 }

/// <summary>
/// cuBLAS v2 entry points (column-major; device pointers; alpha/beta on the host). Every call
/// returns a cublasStatus_t for <see cref="CudaStatus.CheckCublas"/>.
/// </summary>
internal static partial class Cublas
{
    static Cublas() => CudaLibraries.EnsureResolver();

    [LibraryImport(CudaLibraries.CublasImportName)]
    public static partial int cublasCreate_v2(out IntPtr handle);

    [LibraryImport(CudaLibraries.CublasImportName)]
    public static partial int cublasDestroy_v2(IntPtr handle);

    [LibraryImport(CudaLibraries.CublasImportName)]
    public static partial int cublasSetStream_v2(IntPtr handle, IntPtr stream);

    [LibraryImport(CudaLibraries.CublasImportName)]
    public static partial int cublasSetMathMode(IntPtr handle, CublasMath mode);

    [LibraryImport(CudaLibraries.CublasImportName)]
    public static partial int cublasSgemm_v2(IntPtr handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, in float alpha, IntPtr a, int lda, IntPtr b, int ldb, in float beta, IntPtr c, int ldc);

    [LibraryImport(CudaLibraries.CublasImportName)]
    public static partial int cublasSsyrk_v2(IntPtr handle, CublasFillMode uplo, CublasOperation trans,
        int n, int k, in float alpha, IntPtr a, int lda, in float beta, IntPtr c, int ldc);

    [LibraryImport(CudaLibraries.CublasImportName)]
    public static partial int cublasSgemv_v2(IntPtr handle, CublasOperation trans, int m, int n,
        in float alpha, IntPtr a, int lda, IntPtr x, int incx, in float beta, IntPtr y, int incy);

    [LibraryImport(CudaLibraries.CublasImportName)]
    public static partial int cublasSgemmStridedBatched(IntPtr handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, in float alpha, IntPtr a, int lda, long strideA, IntPtr b, int ldb, long strideB,
        in float beta, IntPtr c, int ldc, long strideC, int batchCount);
}
