using TaskMerge.Engine.Native;
using Xunit;

namespace TaskMerge.Engine.Tests.Native;

public sealed class CudaStatusTests
{
    [Theory]
    [InlineData(0, "CUBLAS_STATUS_SUCCESS")]
    [InlineData(1, "CUBLAS_STATUS_NOT_INITIALIZED")]
    [InlineData(3, "CUBLAS_STATUS_ALLOC_FAILED")]
    [InlineData(7, "CUBLAS_STATUS_INVALID_VALUE")]
    [InlineData(8, "CUBLAS_STATUS_ARCH_MISMATCH")]
    [InlineData(11, "CUBLAS_STATUS_MAPPING_ERROR")]
    [InlineData(13, "CUBLAS_STATUS_EXECUTION_FAILED")]
    [InlineData(14, "CUBLAS_STATUS_INTERNAL_ERROR")]
    [InlineData(15, "CUBLAS_STATUS_NOT_SUPPORTED")]
    [InlineData(16, "CUBLAS_STATUS_LICENSE_ERROR")]
    [InlineData(2, "CUBLAS_STATUS_UNKNOWN")]
    [InlineData(-1, "CUBLAS_STATUS_UNKNOWN")]
    public void CublasCodesMapToTheirEnumNames(int status, string name) => Assert.Equal(name, CudaStatus.CublasName(status));

    [Theory]
    [InlineData(0, "CUSOLVER_STATUS_SUCCESS")]
    [InlineData(2, "CUSOLVER_STATUS_ALLOC_FAILED")]
    [InlineData(3, "CUSOLVER_STATUS_INVALID_VALUE")]
    [InlineData(6, "CUSOLVER_STATUS_EXECUTION_FAILED")]
    [InlineData(7, "CUSOLVER_STATUS_INTERNAL_ERROR")]
    [InlineData(8, "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED")]
    [InlineData(10, "CUSOLVER_STATUS_ZERO_PIVOT")]
    [InlineData(20, "CUSOLVER_STATUS_IRS_INTERNAL_ERROR")]
    [InlineData(30, "CUSOLVER_STATUS_IRS_MATRIX_SINGULAR")]
    [InlineData(31, "CUSOLVER_STATUS_INVALID_WORKSPACE")]
    [InlineData(17, "CUSOLVER_STATUS_UNKNOWN")]
    public void CusolverCodesMapToTheirEnumNames(int status, string name) => Assert.Equal(name, CudaStatus.CusolverName(status));

    [Fact]
    public void FailureNamesTheCallTheStatusAndTheCode()
    {
        var e = Assert.Throws<CudaLibraryException>(() => CudaStatus.CheckCublas(7, "cublasSgemm_v2"));
        Assert.Equal("cublasSgemm_v2 failed: CUBLAS_STATUS_INVALID_VALUE (7)", e.Message);
        Assert.Equal(("cublasSgemm_v2", 7, "CUBLAS_STATUS_INVALID_VALUE"), (e.Call, e.Status, e.StatusName));

        e = Assert.Throws<CudaLibraryException>(() => CudaStatus.CheckCusolver(6, "cusolverDnSsyevd"));
        Assert.Equal("cusolverDnSsyevd failed: CUSOLVER_STATUS_EXECUTION_FAILED (6)", e.Message);
    }

    [Fact]
    public void SuccessDoesNotThrow()
    {
        CudaStatus.CheckCublas(0, "cublasCreate_v2");
        CudaStatus.CheckCusolver(0, "cusolverDnCreate");
    }
}
