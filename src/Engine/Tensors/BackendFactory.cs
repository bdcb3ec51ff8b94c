using TaskMerge.Engine.Tensors.Cpu;

namespace TaskMerge.Engine.Tensors;

/// <summary>Chooses the compute backend for <c>--device auto|cpu|cuda</c>.</summary>
public static class BackendFactory
{
    /// <summary>
    /// Creates the backend. <c>auto</c> takes CUDA when a usable GPU and driver are present, else the CPU;
    /// <c>cuda</c> without one is a <see cref="BadInputException"/>.
    /// </summary>
    /// <param name="device">auto, cpu or cuda.</param>
    /// <param name="threads">CPU threads (0 = all cores).</param>
    /// <param name="note">Why CUDA was not used under auto (null otherwise).</param>
    public static IBackend Create(string device, int threads, out string? note)
    {
        note = null;
        switch (device.Trim().ToLowerInvariant())
        {
            case "cpu":
                return new CpuBackend(threads);
            case "cuda" or "gpu":
                return TryCreateCuda(out string reason) ?? throw new BadInputException($"--device cuda: {reason}");
            case "auto":
                var cuda = TryCreateCuda(out string why);
                if (cuda is not null) return cuda;
                note = why;
                return new CpuBackend(threads);
            default:
                throw new BadInputException($"--device '{device}' is not one of auto, cpu, cuda");
        }
    }

    private static IBackend? TryCreateCuda(out string reason) =>
        Ilgpu.IlgpuBackend.TryCreateCuda(out reason, allowTf32: Environment.GetEnvironmentVariable("TASKMERGE_TF32") == "1");
}
