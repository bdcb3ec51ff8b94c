namespace TaskMerge.Engine.Tensors;

/// <summary>
/// Dense linear algebra on row-major matrices: the GEMM family (cuBLAS on CUDA, <c>CpuBlas</c> on the
/// host), block copies and column scaling for building bases, and the float64 factorisations
/// (SVD, symmetric eigen-decomposition, Cholesky solve; LAPACK on the host, cuSOLVER on CUDA).
/// </summary>
public interface ILinearAlgebraOps : ITensorOps
{
    /// <summary>C ← alpha·op(A)·op(B) + beta·C.</summary>
    void Gemm(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f);

    /// <summary>
    /// C ← alpha·op(A)·op(A)ᵀ + beta·C with op(A) = Aᵀ when <paramref name="transA"/> (so C = AᵀA).
    /// The full symmetric matrix is written.
    /// </summary>
    void Syrk(Tensor a, bool transA, Tensor c, float alpha = 1f, float beta = 0f);

    /// <summary>y ← alpha·op(A)·x + beta·y for 1-D x, y.</summary>
    void Gemv(Tensor a, bool transA, Tensor x, Tensor y, float alpha = 1f, float beta = 0f);

    /// <summary>
    /// Strided-batched GEMM over rank-3 tensors: C[b] ← alpha·op(A[b])·op(B[b]) + beta·C[b] for every b of
    /// the leading dimension (A [batch, ·, ·], B [batch, ·, ·], C [batch, m, n], packed row-major).
    /// </summary>
    void GemmStridedBatched(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f);

    /// <summary>
    /// Copies a rows×cols block: dst[dstRow + i, dstCol + j] ← src[srcRow + i, srcCol + j]. Both tensors
    /// are 2-D, or 1-D read as a single row (row offsets 0, rows 1). The block must lie inside both;
    /// src and dst must be different tensors.
    /// </summary>
    void CopyBlock(Tensor src, int srcRow, int srcCol, Tensor dst, int dstRow, int dstCol, int rows, int cols);

    /// <summary>dst[i, j] ← a[i, j]·scales[j] for a 2-D a (a·diag(scales)); dst may be a.</summary>
    void ScaleColumns(Tensor a, Tensor scales, Tensor dst);

    /// <summary>
    /// Thin singular value decomposition a = u·diag(s)·vt of the m×n matrix <paramref name="a"/> (not
    /// modified): <paramref name="u"/> m×k with orthonormal columns, <paramref name="s"/> of length k
    /// holding the singular values in descending order, <paramref name="vt"/> k×n with orthonormal rows,
    /// k = min(m, n). The sign of each singular-vector pair, and the basis within a repeated singular
    /// value, are unspecified. Float32 in and out; implementations factorise in float64 where they can
    /// (CPU: LAPACK <c>dgesdd</c> or a managed float64 SVD). A non-finite input gives NaN outputs.
    /// </summary>
    void Svd(Tensor a, Tensor u, Tensor s, Tensor vt);

    /// <summary>
    /// Eigen-decomposition a = V·diag(w)·Vᵀ of the symmetric n×n matrix <paramref name="a"/> (not modified;
    /// only symmetric input is meaningful): <paramref name="eigenvalues"/> (length n) ascending, as LAPACK
    /// <c>syevd</c> returns them; <paramref name="eigenvectors"/> n×n orthogonal, its column j the unit
    /// eigenvector of eigenvalues[j] (sign unspecified). Float32 in and out, float64 inside on the CPU.
    /// A non-finite input gives NaN outputs.
    /// </summary>
    void SymmetricEigen(Tensor a, Tensor eigenvalues, Tensor eigenvectors);

    /// <summary>
    /// B ← B·(A + shift·I)⁻¹ for a symmetric positive-definite A [n,n] and B [m,n]: every row of B is
    /// solved against the same matrix. (Row-major B [m,n] is column-major Bᵀ [n,m], so this is exactly
    /// LAPACK/cuSOLVER potrs on the right-hand sides Bᵀ.) A + shift·I is factorised by Cholesky (potrf)
    /// and the solves use the factor (potrs), both in float64; only the lower triangle of row-major A is
    /// read and A is left unchanged. Returns false, leaving B unchanged, when A + shift·I is not
    /// positive definite.
    /// </summary>
    bool CholeskySolve(Tensor a, double shift, Tensor b);
}
