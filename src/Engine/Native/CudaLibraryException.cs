namespace TaskMerge.Engine.Native;

/// <summary>A cuBLAS or cuSOLVER call returned a failure status.</summary>
public sealed class CudaLibraryException : Exception
{
    /// <summary>Creates the exception for <paramref name="call"/> returning <paramref name="status"/> (named <paramref name="statusName"/>).</summary>
    public CudaLibraryException(string call, int status, string statusName)
        : base($"{call} failed: {statusName} ({status})")
    {
        Call = call;
        Status = status;
        StatusName = statusName;
    }

    /// <summary>The library function that failed, e.g. "cublasSgemm_v2".</summary>
    public string Call { get; }

    /// <summary>The raw status code.</summary>
    public int Status { get; }

    /// <summary>The status enum name, e.g. "CUBLAS_STATUS_INVALID_VALUE".</summary>
    public string StatusName { get; }
}

/// <summary>Status-code names of cuBLAS and cuSOLVER, and the checks that turn failures into <see cref="CudaLibraryException"/>.</summary>
public static class CudaStatus
{
    private static readonly Dictionary<int, string> CublasNames = new()
    {
        [0] = "CUBLAS_STATUS_SUCCESS",
        [1] = "CUBLAS_STATUS_NOT_INITIALIZED",
        [3] = "CUBLAS_STATUS_ALLOC_FAILED",
        [7] = "CUBLAS_STATUS_INVALID_VALUE",
        [8] = "CUBLAS_STATUS_ARCH_MISMATCH",
        [11] = "CUBLAS_STATUS_MAPPING_ERROR",
        [13] = "CUBLAS_STATUS_EXECUTION_FAILED",
        [14] = "CUBLAS_STATUS_INTERNAL_ERROR",
        [15] = "CUBLAS_STATUS_NOT_SUPPORTED",
        [16] = "CUBLAS_STATUS_LICENSE_ERROR",
    };

    private static readonly Dictionary<int, string> CusolverNames = new()
    {
        [0] = "CUSOLVER_STATUS_SUCCESS",
        [1] = "CUSOLVER_STATUS_NOT_INITIALIZED",
        [2] = "CUSOLVER_STATUS_ALLOC_FAILED",
        [3] = "CUSOLVER_STATUS_INVALID_VALUE",
        [4] = "CUSOLVER_STATUS_ARCH_MISMATCH",
        [5] = "CUSOLVER_STATUS_MAPPING_ERROR",
        [6] = "CUSOLVER_STATUS_EXECUTION_FAILED",
        [7] = "CUSOLVER_STATUS_INTERNAL_ERROR",
        [8] = "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED",
        [9] = "CUSOLVER_STATUS_NOT_SUPPORTED",
        [10] = "CUSOLVER_STATUS_ZERO_PIVOT",
        [11] = "CUSOLVER_STATUS_INVALID_LICENSE",
        [12] = "CUSOLVER_STATUS_IRS_PARAMS_NOT_INITIALIZED",
        [13] = "CUSOLVER_STATUS_IRS_PARAMS_INVALID",
        [14] = "CUSOLVER_STATUS_IRS_PARAMS_INVALID_PREC",
        [15] = "CUSOLVER_STATUS_IRS_PARAMS_INVALID_REFINE",
        [16] = "CUSOLVER_STATUS_IRS_PARAMS_INVALID_MAXITER",
        [20] = "CUSOLVER_STATUS_IRS_INTERNAL_ERROR",
        [21] = "CUSOLVER_STATUS_IRS_NOT_SUPPORTED",
        [22] = "CUSOLVER_STATUS_IRS_OUT_OF_RANGE",
        [23] = "CUSOLVER_STATUS_IRS_NRHS_NOT_SUPPORTED_FOR_REFINE_GMRES",
        [25] = "CUSOLVER_STATUS_IRS_INFOS_NOT_INITIALIZED",
        [26] = "CUSOLVER_STATUS_IRS_INFOS_NOT_DESTROYED",
        [30] = "CUSOLVER_STATUS_IRS_MATRIX_SINGULAR",
        [31] = "CUSOLVER_STATUS_INVALID_WORKSPACE",
    };

    /// <summary>The cublasStatus_t enum name of <paramref name="status"/> ("CUBLAS_STATUS_UNKNOWN" if not a known code).</summary>
    public static string CublasName(int status) => CublasNames.GetValueOrDefault(status, "CUBLAS_STATUS_UNKNOWN");

    /// <summary>The cusolverStatus_t enum name of <paramref name="status"/> ("CUSOLVER_STATUS_UNKNOWN" if not a known code).</summary>
    public static string CusolverName(int status) => CusolverNames.GetValueOrDefault(status, "CUSOLVER_STATUS_UNKNOWN");

    /// <summary>Throws <see cref="CudaLibraryException"/> unless <paramref name="status"/> is CUBLAS_STATUS_SUCCESS.</summary>
    public static void CheckCublas(int status, string call)
    {
        if (status != 0) throw new CudaLibraryException(call, status, CublasName(status));
    }

    /// <summary>Throws <see cref="CudaLibraryException"/> unless <paramref name="status"/> is CUSOLVER_STATUS_SUCCESS.</summary>
    public static void CheckCusolver(int status, string call)
    {
        if (status != 0) throw new CudaLibraryException(call, status, CusolverName(status));
    }
}
