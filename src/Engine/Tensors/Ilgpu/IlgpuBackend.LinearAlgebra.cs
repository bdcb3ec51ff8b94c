using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// SVD, symmetric eigen-decomposition and Cholesky solves. On a CUDA accelerator with cuSOLVER they run
/// on the device in float64: the float32 row-major input is widened into a column-major float64 matrix
/// (transposed where the layout needs it), factorised by an <see cref="IDeviceSolver"/>, and the factors
/// narrowed back into the row-major outputs, so nothing crosses to the host but devInfo. Without one
/// (ILGPU's CPU accelerator, no cuSOLVER) the tensors are factorised by the CPU backend between a
/// download and an upload, which is also the answer to non-finite input and to a factorisation that
/// does not converge.
/// </summary>
public sealed partial class IlgpuBackend
{
    /// <summary>What runs Svd / SymmetricEigen / CholeskySolve: "cuSOLVER (path), float64", or the host path and why.</summary>
    public string LinearAlgebraEngine { get; }

    /// <summary>
    /// The one place the dense solver is chosen: cuSOLVER on a CUDA accelerator where it loads, else none
    /// (the host path), with <paramref name="why"/> saying why not.
    /// </summary>
    private static IDeviceSolver? ChooseSolver(Accelerator accelerator, DevicePool pool, out string why)
    {
        if (accelerator is not CudaAccelerator cuda)
        {
            why = $"no cuSOLVER on a {accelerator.AcceleratorType} accelerator";
            return null;
        }
        return CusolverSession.TryCreate(cuda, pool, out why);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Device path: row-major A (m×n) is widened to the column-major p×k matrix X with p = max(m, n) ≥ k,
    /// X = A when m ≥ n and X = Aᵀ (the same memory) otherwise, and X = U·S·Vᵀ by gesvdj. Then
    /// A = U·S·Vᵀ gives u = U, vt = Vᵀ; A = Xᵀ = V·S·Uᵀ gives u = V, vt = Uᵀ.
    /// </remarks>
    public void Svd(Tensor a, Tensor u, Tensor s, Tensor vt)
    {
        var (m, n, k) = OpShapes.Svd(a, u, s, vt);
        if (k == 0) return;
        if (_solver is null || !float.IsFinite(MaxAbs(a)))
        {
            SvdOnHost(a, u, s, vt);
            return;
        }
        int p = Math.Max(m, n);
        bool tall = m >= n;
        using var x = PooledDoubles.Rent(_pool, (long)p * k);
        using var sd = PooledDoubles.Rent(_pool, k);
        using var ud = PooledDoubles.Rent(_pool, (long)p * k);
        using var vd = PooledDoubles.Rent(_pool, (long)k * k);
        _kernels.ToDouble(m * n, View(a), x.View, m, n, tall ? 1 : 0);
        if (_solver.Gesvdj(p, k, x.Pointer, sd.Pointer, ud.Pointer, vd.Pointer) != 0)
        {
            SvdOnHost(a, u, s, vt);
            return;
        }
        _kernels.ToFloat(k, sd.View, View(s), 1, k, 0);
        _kernels.ToFloat(m * k, (tall ? ud : vd).View, View(u), m, k, 1);
        _kernels.ToFloat(k * n, (tall ? vd : ud).View, View(vt), k, n, 0);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Device path: row-major A is read as the column-major Aᵀ (= A for symmetric input, lower triangle,
    /// as the CPU backend passes it to LAPACK); syevd's column-major eigenvectors are transposed into the
    /// row-major output so that column j still belongs to eigenvalue j.
    /// </remarks>
    public void SymmetricEigen(Tensor a, Tensor eigenvalues, Tensor eigenvectors)
    {
        int n = OpShapes.SymmetricEigen(a, eigenvalues, eigenvectors);
        if (n == 0) return;
        if (_solver is null || !float.IsFinite(MaxAbs(a)))
        {
            EigenOnHost(a, eigenvalues, eigenvectors);
            return;
        }
        using var x = PooledDoubles.Rent(_pool, (long)n * n);
        using var w = PooledDoubles.Rent(_pool, n);
        _kernels.ToDouble(n * n, View(a), x.View, n, n, 0);
        if (_solver.Syevd(n, x.Pointer, w.Pointer) != 0)
        {
            EigenOnHost(a, eigenvalues, eigenvectors);
            return;
        }
        _kernels.ToFloat(n, w.View, View(eigenvalues), 1, n, 0);
        _kernels.ToFloat(n * n, x.View, View(eigenvectors), n, n, 1);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Device path: the lower triangle of row-major A is the upper triangle of the column-major matrix
    /// of the same memory, which potrf factorises (after adding the shift to the diagonal); row-major
    /// B [m×n] is the column-major Bᵀ [n×m], the m right-hand sides of potrs. A factor with a pivot that
    /// is not a finite positive number counts as not positive definite, as on the CPU.
    /// </remarks>
    public bool CholeskySolve(Tensor a, double shift, Tensor b)
    {
        var (n, rows) = OpShapes.CholeskySolve(a, b);
        if (n == 0) return true;
        if (_solver is null) return CholeskySolveOnHost(a, shift, b);
        using var factor = PooledDoubles.Rent(_pool, (long)n * n);
        _kernels.ToDouble(n * n, View(a), factor.View, n, n, 0);
        if (shift != 0) _kernels.AddToDiagonal(n, factor.View, n, shift);
        if (_solver.Potrf(n, factor.Pointer) != 0 || HasBadPivot(factor, n)) return false;
        if (rows == 0) return true;
        using var rhs = PooledDoubles.Rent(_pool, (long)rows * n);
        _kernels.ToDouble(rows * n, View(b), rhs.View, rows, n, 0);
        _solver.Potrs(n, rows, factor.Pointer, rhs.Pointer);
        _kernels.ToFloat(rows * n, rhs.View, View(b), rows, n, 0);
        return true;
    }

    private bool HasBadPivot(PooledDoubles factor, int n)
    {
        var flag = Scratch(ref _flag, 1);
        var view = flag.View.SubView(0, 1);
        view.MemSetToZero();
        _kernels.FlagBadPivots(n, factor.View, n, view);
        return Scalar(flag, 0) != 0;
    }

    private void SvdOnHost(Tensor a, Tensor u, Tensor s, Tensor vt) =>
        OnHost([a], [u, s, vt], (cpu, i, o) => cpu.Svd(i[0], o[0], o[1], o[2]));

    private void EigenOnHost(Tensor a, Tensor eigenvalues, Tensor eigenvectors) =>
        OnHost([a], [eigenvalues, eigenvectors], (cpu, i, o) => cpu.SymmetricEigen(i[0], o[0], o[1]));

    private bool CholeskySolveOnHost(Tensor a, double shift, Tensor b)
    {
        bool solved = false;
        OnHost([a, b], [b], (cpu, i, o) =>
        {
            solved = cpu.CholeskySolve(i[0], shift, i[1]);
            cpu.Copy(i[1], o[0]);
        });
        return solved;
    }

    private void OnHost(Tensor[] inputs, Tensor[] outputs, Action<Cpu.CpuBackend, Tensor[], Tensor[]> op)
    {
        var cpu = Cpu.CpuBackend.Shared;
        var i = inputs.Select(t => cpu.FromHost(t.ToArray(), t.Shape.ToArray())).ToArray();
        var o = outputs.Select(t => cpu.Empty(t.Shape.ToArray())).ToArray();
        op(cpu, i, o);
        for (int k = 0; k < outputs.Length; k++) Upload(Cpu.CpuBackend.Span(o[k]), outputs[k]);
    }
}
