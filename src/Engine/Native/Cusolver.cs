using System.Runtime.InteropServices;

namespace TaskMerge.Engine.Native;

/// <summary>cusolverEigMode_t.</summary>
internal enum CusolverEigMode { NoVector = 0, Vector = 1 }

/// <summary>
/// cuSOLVER dense entry points (column-major; device pointers for matrices, workspaces and
/// devInfo; workspace sizes returned on the host). Every call returns a cusolverStatus_t for
/// <see cref="CudaStatus.CheckCusolver"/>.
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
    public static partial int cusolverDnSsyevd_bufferSize(IntPtr handle, CusolverEigMode jobz, CublasFillMode uplo,
        int n, IntPtr a, int lda, IntPtr w, out int lwork);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnSsyevd(IntPtr handle, CusolverEigMode jobz, CublasFillMode uplo,
        int n, IntPtr a, int lda, IntPtr w, IntPtr work, int lwork, IntPtr devInfo);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnSpotrf_bufferSize(IntPtr handle, CublasFillMode uplo, int n, IntPtr a, int lda, out int lwork);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnSpotrf(IntPtr handle, CublasFillMode uplo, int n, IntPtr a, int lda,
        IntPtr work, int lwork, IntPtr devInfo);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnSpotrs(IntPtr handle, CublasFillMode uplo, int n, int nrhs, IntPtr a, int lda,
        IntPtr b, int ldb, IntPtr devInfo);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnCreateGesvdjInfo(out IntPtr info);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnDestroyGesvdjInfo(IntPtr info);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnSgesvdj_bufferSize(IntPtr handle, CusolverEigMode jobz, int econ, int m, int n,
        IntPtr a, int lda, IntPtr s, IntPtr u, int ldu, IntPtr v, int ldv, out int lwork, IntPtr info);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnSgesvdj(IntPtr handle, CusolverEigMode jobz, int econ, int m, int n,
        IntPtr a, int lda, IntPtr s, IntPtr u, int ldu, IntPtr v, int ldv, IntPtr work, int lwork, IntPtr devInfo, IntPtr info);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnSgesvd_bufferSize(IntPtr handle, int m, int n, out int lwork);

    [LibraryImport(CudaLibraries.CusolverImportName)]
    public static partial int cusolverDnSgesvd(IntPtr handle, byte jobu, byte jobvt, int m, int n,
        IntPtr a, int lda, IntPtr s, IntPtr u, int ldu, IntPtr vt, int ldvt, IntPtr work, int lwork, IntPtr rwork, IntPtr devInfo);
}
