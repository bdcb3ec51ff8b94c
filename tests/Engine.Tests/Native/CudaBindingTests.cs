using System.Reflection;
using System.Runtime.InteropServices;
using TaskMerge.Engine.Native;

namespace TaskMerge.Engine.Tests.Native;

/// <summary>
/// The cuBLAS and cuSOLVER imports against their C prototypes as documented in <c>cublas_api.h</c> /
/// <c>cusolverDn.h</c> (written out below): same entry points, same parameter count and order, and every
/// parameter of a type with the same size and passing convention — handles, device pointers and opaque
/// info objects as pointers, <c>int</c> as int, enums as 32-bit enums, host outputs (<c>int *lwork</c>,
/// created handles, gesvdj query results) as <c>out</c>, host scalars (<c>alpha</c>, <c>beta</c>) as <c>in</c>.
/// A wrong binding here corrupts the stack on the GPU box instead of failing, so it is pinned without one.
/// </summary>
public sealed class CudaBindingTests
{
    private static readonly string[] CusolverPrototypes =
    [
        "cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *handle)",
        "cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle)",
        "cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t streamId)",
        "cusolverStatus_t cusolverDnDsyevd_bufferSize(cusolverDnHandle_t handle, cusolverEigMode_t jobz, cublasFillMode_t uplo, int n, const double *A, int lda, const double *W, int *lwork)",
        "cusolverStatus_t cusolverDnDsyevd(cusolverDnHandle_t handle, cusolverEigMode_t jobz, cublasFillMode_t uplo, int n, double *A, int lda, double *W, double *work, int lwork, int *devInfo)",
        "cusolverStatus_t cusolverDnDpotrf_bufferSize(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n, double *A, int lda, int *Lwork)",
        "cusolverStatus_t cusolverDnDpotrf(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n, double *A, int lda, double *Workspace, int Lwork, int *devInfo)",
        "cusolverStatus_t cusolverDnDpotrs(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n, int nrhs, const double *A, int lda, double *B, int ldb, int *devInfo)",
        "cusolverStatus_t cusolverDnCreateGesvdjInfo(gesvdjInfo_t *info)",
        "cusolverStatus_t cusolverDnDestroyGesvdjInfo(gesvdjInfo_t info)",
        "cusolverStatus_t cusolverDnDgesvdj_bufferSize(cusolverDnHandle_t handle, cusolverEigMode_t jobz, int econ, int m, int n, const double *A, int lda, const double *S, const double *U, int ldu, const double *V, int ldv, int *lwork, gesvdjInfo_t params)",
        "cusolverStatus_t cusolverDnDgesvdj(cusolverDnHandle_t handle, cusolverEigMode_t jobz, int econ, int m, int n, double *A, int lda, double *S, double *U, int ldu, double *V, int ldv, double *work, int lwork, int *info, gesvdjInfo_t params)",
        "cusolverStatus_t cusolverDnXgesvdjGetSweeps(cusolverDnHandle_t handle, gesvdjInfo_t info, int *executed_sweeps)",
        "cusolverStatus_t cusolverDnXgesvdjGetResidual(cusolverDnHandle_t handle, gesvdjInfo_t info, double *residual)",
        "cusolverStatus_t cusolverDnDgesvd_bufferSize(cusolverDnHandle_t handle, int m, int n, int *lwork)",
        "cusolverStatus_t cusolverDnDgesvd(cusolverDnHandle_t handle, signed char jobu, signed char jobvt, int m, int n, double *A, int lda, double *S, double *U, int ldu, double *VT, int ldvt, double *work, int lwork, double *rwork, int *devInfo)",
    ];

    private static readonly string[] CublasPrototypes =
    [
        "cublasStatus_t cublasCreate_v2(cublasHandle_t *handle)",
        "cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)",
        "cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId)",
        "cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)",
        "cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc)",
        "cublasStatus_t cublasSsyrk_v2(cublasHandle_t handle, cublasFillMode_t uplo, cublasOperation_t trans, int n, int k, const float *alpha, const float *A, int lda, const float *beta, float *C, int ldc)",
        "cublasStatus_t cublasSgemv_v2(cublasHandle_t handle, cublasOperation_t trans, int m, int n, const float *alpha, const float *A, int lda, const float *x, int incx, const float *beta, float *y, int incy)",
        "cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const float *alpha, const float *A, int lda, long long int strideA, const float *B, int ldb, long long int strideB, const float *beta, float *C, int ldc, long long int strideC, int batchCount)",
    ];

    /// <summary>Pointer parameters that live on the host: created handles and query results (out), scalars (in).</summary>
    private static readonly HashSet<string> HostOutputs = ["lwork", "Lwork", "executed_sweeps", "residual"];
    private static readonly HashSet<string> HostInputs = ["alpha", "beta"];

    private static readonly Dictionary<string, Type> ValueTypes = new()
    {
        ["int"] = typeof(int), ["double"] = typeof(double), ["float"] = typeof(float), ["signed char"] = typeof(sbyte),
        ["long long int"] = typeof(long),
        ["cusolverDnHandle_t"] = typeof(IntPtr), ["cublasHandle_t"] = typeof(IntPtr), ["gesvdjInfo_t"] = typeof(IntPtr), ["cudaStream_t"] = typeof(IntPtr),
        ["cusolverEigMode_t"] = typeof(CusolverEigMode), ["cublasFillMode_t"] = typeof(CublasFillMode), ["cublasOperation_t"] = typeof(CublasOperation),
        ["cublasMath_t"] = typeof(CublasMath),
    };

    public static TheoryData<string> CusolverTable => new(CusolverPrototypes);

    public static TheoryData<string> CublasTable => new(CublasPrototypes);

    [Theory]
    [MemberData(nameof(CusolverTable))]
    public void CusolverImportMatchesItsPrototype(string prototype) => AssertBinding(typeof(Cusolver), CudaLibraries.CusolverImportName, prototype);

    [Theory]
    [MemberData(nameof(CublasTable))]
    public void CublasImportMatchesItsPrototype(string prototype) => AssertBinding(typeof(Cublas), CudaLibraries.CublasImportName, prototype);

    [Fact]
    public void EveryImportIsInTheTable()
    {
        Assert.Equal(CusolverPrototypes.Select(Name).Order(), Imports(typeof(Cusolver)).Select(m => m.Name).Order());
        Assert.Equal(CublasPrototypes.Select(Name).Order(), Imports(typeof(Cublas)).Select(m => m.Name).Order());
    }

    [Fact]
    public void EnumValuesAreTheHeaders()
    {
        Assert.Equal((0, 1), ((int)CusolverEigMode.NoVector, (int)CusolverEigMode.Vector));
        Assert.Equal((0, 1), ((int)CublasFillMode.Lower, (int)CublasFillMode.Upper));
        Assert.Equal((0, 1), ((int)CublasOperation.N, (int)CublasOperation.T));
        Assert.Equal((0, 3), ((int)CublasMath.Default, (int)CublasMath.Tf32TensorOp));
        foreach (var e in new[] { typeof(CusolverEigMode), typeof(CublasFillMode), typeof(CublasOperation), typeof(CublasMath) })
            Assert.Equal(typeof(int), Enum.GetUnderlyingType(e));
    }

    [Fact]
    public void TheCheckerFailsOnAWrongBinding()
    {
        Assert.ThrowsAny<Exception>(() => AssertBinding(typeof(Cusolver), CudaLibraries.CusolverImportName,
            "cusolverStatus_t cusolverDnDpotrs(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n, int nrhs, const double *A, int lda, double *B, int ldb, int *devInfo, int extra)"));
        Assert.ThrowsAny<Exception>(() => AssertBinding(typeof(Cusolver), CudaLibraries.CusolverImportName,
            "cusolverStatus_t cusolverDnDsyevd_bufferSize(cusolverDnHandle_t handle, cusolverEigMode_t jobz, cublasFillMode_t uplo, int n, const double *A, int lda, const double *W, int *devInfo)"));
        Assert.ThrowsAny<Exception>(() => AssertBinding(typeof(Cusolver), CudaLibraries.CusolverImportName,
            "cusolverStatus_t cusolverDnDgesvd(cusolverDnHandle_t handle, int jobu, signed char jobvt, int m, int n, double *A, int lda, double *S, double *U, int ldu, double *VT, int ldvt, double *work, int lwork, double *rwork, int *devInfo)"));
    }

    private static IEnumerable<MethodInfo> Imports(Type t) =>
        t.GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => m.GetCustomAttribute<LibraryImportAttribute>() is not null);

    private static string Name(string prototype) => prototype[..prototype.IndexOf('(')].Split(' ')[^1];

    private static void AssertBinding(Type bindings, string library, string prototype)
    {
        string name = Name(prototype);
        var method = Imports(bindings).SingleOrDefault(m => m.Name == name) ?? throw new Xunit.Sdk.XunitException($"{bindings.Name} has no import {name}");
        var import = method.GetCustomAttribute<LibraryImportAttribute>()!;
        Assert.Equal(library, import.LibraryName);
        Assert.True(import.EntryPoint is null || import.EntryPoint == name, $"{name}: entry point {import.EntryPoint}");
        Assert.Equal(typeof(int), method.ReturnType);

        var cParams = prototype[(prototype.IndexOf('(') + 1)..prototype.LastIndexOf(')')].Split(',', StringSplitOptions.TrimEntries);
        var parameters = method.GetParameters();
        Assert.True(cParams.Length == parameters.Length, $"{name}: {cParams.Length} parameters in C, {parameters.Length} bound");
        for (int i = 0; i < cParams.Length; i++)
        {
            var (type, pointer, cName) = Parse(cParams[i]);
            var p = parameters[i];
            string where = $"{name} parameter {i} ({cParams[i]}) bound as {p.ParameterType.Name} {p.Name}";
            bool createdObject = pointer && (type is "cusolverDnHandle_t" or "cublasHandle_t" or "gesvdjInfo_t");
            if (pointer && (HostOutputs.Contains(cName) || createdObject))
            {
                Assert.True(p.ParameterType.IsByRef && p.IsOut, $"{where}: expected out");
                Assert.Equal(ValueTypes[type], p.ParameterType.GetElementType());
            }
            else if (pointer && HostInputs.Contains(cName))
            {
                Assert.True(p.ParameterType.IsByRef && p.IsIn, $"{where}: expected in");
                Assert.Equal(typeof(float), p.ParameterType.GetElementType());
            }
            else if (pointer)
                Assert.True(p.ParameterType == typeof(IntPtr), $"{where}: expected a device pointer (IntPtr)");
            else
                Assert.True(p.ParameterType == ValueTypes[type], $"{where}: expected {ValueTypes[type].Name}");
        }
    }

    private static (string Type, bool Pointer, string Name) Parse(string cParam)
    {
        string text = cParam.StartsWith("const ", StringComparison.Ordinal) ? cParam[6..] : cParam;
        bool pointer = text.Contains('*');
        int split = pointer ? text.IndexOf('*') : text.LastIndexOf(' ');
        return (text[..split].Trim(), pointer, text[(split + 1)..].Trim());
    }
}
