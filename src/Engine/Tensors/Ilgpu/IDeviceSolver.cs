namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// Dense float64 factorisations of column-major matrices in device memory with LAPACK semantics
/// (cuSOLVER's on a CUDA accelerator, <see cref="CusolverSession"/>): what the device backend's
/// <see cref="ILinearAlgebraOps.Svd"/>, <see cref="ILinearAlgebraOps.SymmetricEigen"/> and <see cref="ILinearAlgebraOps.CholeskySolve"/>
/// run on. Pointers are device addresses of float64 arrays; every leading dimension is the row count.
/// Calls are ordered on the backend's stream and return the factorisation's info once it is known:
/// 0 on success, &gt; 0 when it did not converge (Syevd, Gesvdj) or a leading minor is not positive
/// definite (Potrf).
/// </summary>
internal interface IDeviceSolver : IDisposable
{
    /// <summary>What runs the factorisations, e.g. "cuSOLVER (/usr/local/cuda/lib64/libcusolver.so.12), float64".</summary>
    string Description { get; }

    /// <summary>
    /// Eigen-decomposition of the symmetric n×n <paramref name="a"/> (lower triangle read): eigenvalues
    /// ascending into <paramref name="w"/>, <paramref name="a"/> overwritten by the eigenvectors (column j for w[j]).
    /// </summary>
    int Syevd(int n, IntPtr a, IntPtr w);

    /// <summary>
    /// Economy SVD a = U·diag(s)·Vᵀ of the m×n <paramref name="a"/> with m ≥ n (destroyed): <paramref name="s"/>
    /// n values descending, <paramref name="u"/> m×n, <paramref name="v"/> n×n (V itself, as gesvdj returns it).
    /// </summary>
    int Gesvdj(int m, int n, IntPtr a, IntPtr s, IntPtr u, IntPtr v);

    /// <summary>Cholesky factorisation a = UᵀU of the n×n <paramref name="a"/>, reading and overwriting its upper triangle.</summary>
    int Potrf(int n, IntPtr a);

    /// <summary>b ← (UᵀU)⁻¹·b for the n×nrhs <paramref name="b"/>, with U the upper factor from <see cref="Potrf"/>.</summary>
    void Potrs(int n, int nrhs, IntPtr a, IntPtr b);
}
