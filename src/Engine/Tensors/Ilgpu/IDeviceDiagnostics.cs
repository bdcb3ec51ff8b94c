namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// What tests and benchmarks may see of, or change in, an <see cref="IlgpuBackend"/> beyond the op set:
/// the cuBLAS session, raw device addresses, the staging counters, the compiled kernels, and a switch
/// that routes the matrix ops to the ILGPU kernels even where cuBLAS is loaded. Production code does not use it.
/// </summary>
internal interface IDeviceDiagnostics
{
    /// <summary>The cuBLAS session behind the matrix ops, if any (for calls the backend does not wrap).</summary>
    CublasSession? Cublas { get; }

    /// <summary>The device address of a tensor's first element.</summary>
    IntPtr DevicePointer(Tensor t);

    /// <summary>Routes GEMM/SYRK/GEMV/batched GEMM to the ILGPU kernels even where cuBLAS is available (to test them on a GPU).</summary>
    bool ForceKernelMatrixOps { get; set; }

    /// <summary>Host→device staging: budget, slot memory and how many uploads took which path.</summary>
    HostStaging Staging { get; }

    /// <summary>Tile rows per launch of the tiled GEMM kernel: the grid-Y limit (65 535 on CUDA); tests lower it to split a small GEMM into bands.</summary>
    int GemmGridRows { get; set; }

    /// <summary>
    /// Largest buffer (elements) <see cref="IMergeOps.BlockDot"/> stacks its vectors into, int.MaxValue (one
    /// device buffer); beyond it BlockDot runs one launch per pair. Tests lower it to take that path.
    /// </summary>
    long MaxStackedElements { get; set; }

    /// <summary>The kernels compiled and loaded so far (every one after <see cref="IlgpuBackend.TryCreateCuda"/>), by method name.</summary>
    IReadOnlyCollection<string> LoadedKernels { get; }
}
