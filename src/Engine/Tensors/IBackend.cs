namespace TaskMerge.Engine.Tensors;

/// <summary>
/// The one op set every merge method and model is written against, as the union of its parts:
/// <see cref="ITensorOps"/> (allocation, transfers, elementwise, reductions), <see cref="IStagingOps"/>
/// (loader-thread uploads), <see cref="ILinearAlgebraOps"/> (GEMM family, factorisations),
/// <see cref="INeuralNetOps"/> (transformer forward/backward, optimizer step) and
/// <see cref="IMergeOps"/> (fused merge-method ops). Implementations: CPU (SIMD, multi-threaded) and
/// any ILGPU accelerator (CUDA). Code that needs only one part takes that interface; every tensor
/// still belongs to a whole backend (<see cref="Tensor.Backend"/>). Float32 values; reductions
/// accumulate in float64. All matrices are row-major 2-D tensors.
/// </summary>
public interface IBackend : IStagingOps, INeuralNetOps, IMergeOps, IDisposable
{
}
