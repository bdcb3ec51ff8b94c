namespace TaskMerge.Kernels;

/// <summary>ILGPU kernels of the engine, grouped by area; each has a CPU twin in the engine's CPU backend.</summary>
public static class KernelsInfo
{
    /// <summary>Version of the kernel set.</summary>
    public const string Version = "0.1";
}
