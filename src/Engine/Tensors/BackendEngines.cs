using TaskMerge.Engine.Native;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tensors.Ilgpu;

namespace TaskMerge.Engine.Tensors;

/// <summary>What computes a backend's ops, for reports (<c>merge_report.json</c>'s <c>engines</c>).</summary>
public static class BackendEngines
{
    /// <summary>
    /// <c>matrix_engine</c> (GEMM/SYRK/GEMV: cuBLAS with its path, or the kernels and why), <c>linear_algebra_engine</c>
    /// (SVD/eigen/Cholesky: cuSOLVER, LAPACK, managed or the host path and why) and, once the CUDA libraries
    /// were probed, <c>libraries</c>: each one's path and version, or the loader's reason it did not load.
    /// </summary>
    public static IReadOnlyDictionary<string, object> Of(IBackend backend)
    {
        var d = new Dictionary<string, object>();
        switch (backend)
        {
            case IlgpuBackend device:
                d["matrix_engine"] = device.MatrixEngine;
                d["linear_algebra_engine"] = device.LinearAlgebraEngine;
                break;
            case CpuBackend cpu:
                d["matrix_engine"] = "CPU backend (SIMD GEMM)";
                try { d["linear_algebra_engine"] = cpu.LinearAlgebra.Description; }
                catch (BadInputException e) { d["linear_algebra_engine"] = e.Message; }
                break;
        }
        var libraries = CudaLibraries.Describe();
        if (libraries.Count > 0) d["libraries"] = libraries;
        return d;
    }
}
