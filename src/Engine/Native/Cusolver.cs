using System.Runtime.InteropServices;

namespace TaskMerge.Engine.Native;

/// <summary>cusolverEigMode_t.</summary>
internal enum CusolverEigMode { NoVector = 0, Vector = 1 }

/// <summary>
/// cuSOLVER dense entry points, declared exactly as in <c>cusolverDn.h</c> (handles, matrices,
/// workspaces, devInfo and gesvdjInfo_t are pointers; <c>int *lwork</c> and the gesvdj query results
/// are host outputs). Matrices are column-major with a leading dimension: a row-major m×n array is
/// the column-major n×m matrix of the same memory. Every call returns a cusolverStatus_t for
/// <see cref="CudaStatus.CheckCusolver"/>; the factorisation's own result (0, or the non-converged /
/// non-positive minor count) is written to devInfo on the device. Only the float64 routines are bound:
/// the device backend factorises in float64 (<see cref="TaskMerge.Engine.Tensors.Ilgpu.CusolverSession"/>);
/// <c>Dgesvd</c> and the gesvdj queries serve the solver benchmarks.
/// </summary>
internal static partial class Cusolver
{
    static Cusolver() => CudaLibraries.EnsureResolver();

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnCreate(out IntPtr handle);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDestroy(IntPtr handle);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnSetStream(IntPtr handle, IntPtr stream);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnCreateGesvdjInfo(out IntPtr info);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDestroyGesvdjInfo(IntPtr info);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDsyevd_bufferSize(IntPtr handle, CusolverEigMode jobz, CublasFillMode uplo,
        int n, IntPtr a, int lda, IntPtr w, out int lwork);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDsyevd(IntPtr handle, CusolverEigMode jobz, CublasFillMode uplo,
        int n, IntPtr a, int lda, IntPtr w, IntPtr work, int lwork, IntPtr devInfo);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDpotrf_bufferSize(IntPtr handle, CublasFillMode uplo, int n, IntPtr a, int lda, out int lwork);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDpotrf(IntPtr handle, CublasFillMode uplo, int n, IntPtr a, int lda,
        IntPtr work, int lwork, IntPtr devInfo);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDpotrs(IntPtr handle, CublasFillMode uplo, int n, int nrhs, IntPtr a, int lda,
        IntPtr b, int ldb, IntPtr devInfo);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDgesvdj_bufferSize(IntPtr handle, CusolverEigMode jobz, int econ, int m, int n,
        IntPtr a, int lda, IntPtr s, IntPtr u, int ldu, IntPtr v, int ldv, out int lwork, IntPtr info);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDgesvdj(IntPtr handle, CusolverEigMode jobz, int econ, int m, int n,
        IntPtr a, int lda, IntPtr s, IntPtr u, int ldu, IntPtr v, int ldv, IntPtr work, int lwork, IntPtr devInfo, IntPtr info);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnXgesvdjGetSweeps(IntPtr handle, IntPtr info, out int executedSweeps);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnXgesvdjGetResidual(IntPtr handle, IntPtr info, out double residual);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDgesvd_bufferSize(IntPtr handle, int m, int n, out int lwork);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDgesvd(IntPtr handle, sbyte jobu, sbyte jobvt, int m, int n,
        IntPtr a, int lda, IntPtr s, IntPtr u, int ldu, IntPtr vt, int ldvt, IntPtr work, int lwork, IntPtr rwork, IntPtr devInfo);
}
