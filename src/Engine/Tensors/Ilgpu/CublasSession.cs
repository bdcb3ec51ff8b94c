using ILGPU.Runtime.Cuda;
using TaskMerge.Engine.Native;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// A cuBLAS handle bound to a CUDA accelerator's context and default stream, with the row-major
/// products of the backend mapped onto column-major cuBLAS: a row-major m×n matrix is the
/// column-major n×m matrix of the same memory, so C = op(A)·op(B) is computed as
/// Cᵀ = op(B)ᵀ·op(A)ᵀ by passing B before A with the same transpose flags.
/// </summary>
internal sealed class CublasSession : IDisposable
{
    private readonly CudaAccelerator _accelerator;
    private IntPtr _handle;

    private CublasSession(CudaAccelerator accelerator, IntPtr handle)
    {
        _accelerator = accelerator;
        _handle = handle;
    }

    /// <summary>
    /// A session on <paramref name="accelerator"/>, or null when cuBLAS cannot be loaded or
    /// initialised; <paramref name="detail"/> names the library loaded or says why not.
    /// </summary>
    public static CublasSession? TryCreate(CudaAccelerator accelerator, bool allowTf32, out string detail)
    {
        if (!CudaLibraries.TryLoadCublas(out detail)) return null;
        IntPtr handle = IntPtr.Zero;
        try
        {
            accelerator.Bind();
            CudaStatus.CheckCublas(Cublas.cublasCreate_v2(out handle), nameof(Cublas.cublasCreate_v2));
            var stream = ((CudaStream)accelerator.DefaultStream).StreamPtr;
            CudaStatus.CheckCublas(Cublas.cublasSetStream_v2(handle, stream), nameof(Cublas.cublasSetStream_v2));
            var math = allowTf32 ? CublasMath.Tf32TensorOp : CublasMath.Default;
            CudaStatus.CheckCublas(Cublas.cublasSetMathMode(handle, math), nameof(Cublas.cublasSetMathMode));
            detail = $"cuBLAS ({detail}{(allowTf32 ? ", TF32" : "")})";
            return new CublasSession(accelerator, handle);
        }
        catch (Exception e) when (e is CudaLibraryException or EntryPointNotFoundException or DllNotFoundException)
        {
            if (handle != IntPtr.Zero) Cublas.cublasDestroy_v2(handle);
            detail = $"cuBLAS unusable: {e.Message}";
            return null;
        }
    }

    /// <summary>The raw handle, for calls the session does not wrap.</summary>
    public IntPtr Handle => _handle;

    /// <summary>Row-major C[m×n] ← alpha·op(A)·op(B) + beta·C; lda/ldb are the stored row strides, ldc = n.</summary>
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, IntPtr a, int lda, IntPtr b, int ldb, float beta, IntPtr c)
    {
        _accelerator.Bind();
        CudaStatus.CheckCublas(Cublas.cublasSgemm_v2(_handle, Op(transB), Op(transA), n, m, k, alpha, b, ldb, a, lda, beta, c, n),
            nameof(Cublas.cublasSgemm_v2));
    }

    /// <summary>
    /// Row-major batched C[i] (m×n) ← alpha·op(A[i])·op(B[i]) + beta·C[i] over densely packed
    /// [batch, rows, cols] tensors; lda/ldb are the stored row strides, the batch strides rows·cols.
    /// </summary>
    public void GemmStridedBatched(bool transA, bool transB, int batch, int m, int n, int k, float alpha,
        IntPtr a, int lda, long strideA, IntPtr b, int ldb, long strideB, float beta, IntPtr c)
    {
        _accelerator.Bind();
        CudaStatus.CheckCublas(Cublas.cublasSgemmStridedBatched(_handle, Op(transB), Op(transA), n, m, k, alpha, b, ldb, strideB,
            a, lda, strideA, beta, c, n, (long)m * n, batch), nameof(Cublas.cublasSgemmStridedBatched));
    }

    /// <summary>
    /// Row-major C[n×n] ← alpha·op(A)·op(A)ᵀ + beta·C on the upper triangle (with the diagonal) only;
    /// op(A) = Aᵀ when <paramref name="transA"/>. lda is the stored row stride of A.
    /// </summary>
    public void SyrkUpper(bool transA, int n, int k, float alpha, IntPtr a, int lda, float beta, IntPtr c)
    {
        // Row-major A (n×k) is column-major X = Aᵀ (k×n), so A·Aᵀ = XᵀX: cuBLAS trans = T; and the
        // row-major upper triangle is the column-major lower one.
        _accelerator.Bind();
        CudaStatus.CheckCublas(Cublas.cublasSsyrk_v2(_handle, CublasFillMode.Lower, Op(!transA), n, k, alpha, a, lda, beta, c, n),
            nameof(Cublas.cublasSsyrk_v2));
    }

    /// <summary>y ← alpha·op(A)·x + beta·y for a stored rows×cols row-major A.</summary>
    public void Gemv(bool transA, int rows, int cols, float alpha, IntPtr a, IntPtr x, float beta, IntPtr y)
    {
        _accelerator.Bind();
        CudaStatus.CheckCublas(Cublas.cublasSgemv_v2(_handle, Op(!transA), cols, rows, alpha, a, cols, x, 1, beta, y, 1),
            nameof(Cublas.cublasSgemv_v2));
    }

    private static CublasOperation Op(bool transpose) => transpose ? CublasOperation.T : CublasOperation.N;

    /// <inheritdoc />
    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        _accelerator.Bind();
        Cublas.cublasDestroy_v2(_handle);
        _handle = IntPtr.Zero;
    }
}
