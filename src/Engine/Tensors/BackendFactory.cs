using TaskMerge.Engine.Tensors.Cpu;

namespace TaskMerge.Engine.Tensors;

/// <summary>Chooses the compute backend for <c>--device auto|cpu|cuda</c>.</summary>
public static class BackendFactory
{
    /// <summary>
    /// Creates the backend. <c>auto</c> takes CUDA when a usable GPU and driver are present and every
    /// kernel compiles and loads on it, else the CPU; <c>cuda</c> without that is a <see cref="BadInputException"/>
    /// (exit 2) naming the reason.
    /// </summary>
    /// <param name="device">auto, cpu or cuda.</param>
    /// <param name="threads">CPU threads (0 = all cores).</param>
    /// <param name="note">Why CUDA was not used under auto (null otherwise).</param>
    public static IBackend Create(string device, int threads, out string? note) =>
        Create(device, threads, out note, TryCreateCuda);

    /// <summary>Creates a CUDA backend, or returns null with the reason (a driver, device or kernel failure).</summary>
    internal delegate IBackend? CudaFactory(out string reason);

    /// <summary>As <see cref="Create(string, int, out string?)"/> with the CUDA attempt given (tests inject a failing one).</summary>
    internal static IBackend Create(string device, int threads, out string? note, CudaFactory tryCreateCuda)
    {
        note = null;
        switch (device.Trim().ToLowerInvariant())
        {
            case "cpu":
                return new CpuBackend(threads);
            case "cuda" or "gpu":
                return tryCreateCuda(out string reason) ?? throw new BadInputException($"--device cuda: {reason}");
            case "auto":
                var cuda = tryCreateCuda(out string why);
                if (cuda is not null) return cuda;
                note = why;
                return new CpuBackend(threads);
            default:
                throw new BadInputException($"--device '{device}' is not one of auto, cpu, cuda");
        }
    }

    /// <summary>
    /// True when <paramref name="note"/> says a CUDA device was there but could not be used (a kernel that
    /// does not build, a JIT or context failure), which deserves a notice; false for a machine without a
    /// CUDA driver or device, where running on the CPU is the expected outcome.
    /// </summary>
    public static bool IsDeviceFailure(string note) =>
        !note.StartsWith(Ilgpu.IlgpuBackend.NoDriverReason, StringComparison.Ordinal) && note != Ilgpu.IlgpuBackend.NoDeviceReason;

    private static IBackend? TryCreateCuda(out string reason) =>
        Ilgpu.IlgpuBackend.TryCreateCuda(out reason, allowTf32: Environment.GetEnvironmentVariable("TASKMERGE_TF32") == "1");
}
