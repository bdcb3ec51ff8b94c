using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tensors.Ilgpu;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// The keyed kernel cache loads every kernel up front, and a kernel that does not build decides the
/// device choice before any input is read: <c>--device auto</c> falls back to the CPU with the reason,
/// <c>--device cuda</c> is bad input (exit 2). The compile failure is injected into the real load path
/// on ILGPU's CPU accelerator (which builds every kernel), since this machine has no GPU.
/// </summary>
public sealed class KernelLoadTests : IDisposable
{
    private const string PtxMessage = "The function 'ExpF' does not have an intrinsic implementation for this backend.\nmore detail";
    private readonly Context _context = Context.Create(builder => builder.CPU());
    private readonly Accelerator _accelerator;

    public KernelLoadTests() => _accelerator = _context.CreateCPUAccelerator(0);

    public void Dispose()
    {
        _accelerator.Dispose();
        _context.Dispose();
    }

    private static void FailOnGelu(System.Reflection.MethodInfo kernel)
    {
        if (kernel.DeclaringType == typeof(TaskMerge.Kernels.NnKernels) && kernel.Name == "Gelu") throw new NotSupportedException(PtxMessage);
    }

    [Fact]
    public void LoadingAllLoadsEveryKernelOfTheKernelsAssembly()
    {
        using var backend = IlgpuBackend.WithKernelsLoaded(new IlgpuBackend(_accelerator), out string reason);
        Assert.NotNull(backend);
        Assert.Equal("", reason);
        var expected = PtxCompileTests.Kernels().Select(k => k.DeclaringType!.Name + "." + k.Name).Order(StringComparer.Ordinal);
        Assert.Equal(expected, backend.Diagnostics.LoadedKernels);
    }

    [Fact]
    public void AKernelThatDoesNotBuildFailsTheBackendNamingTheKernelAndTheCompilerMessage()
    {
        var backend = IlgpuBackend.WithKernelsLoaded(new IlgpuBackend(_accelerator, FailOnGelu), out string reason);
        Assert.Null(backend);
        Assert.StartsWith("kernel NnKernels.Gelu does not build for ", reason);
        Assert.EndsWith("NotSupportedException: The function 'ExpF' does not have an intrinsic implementation for this backend.", reason);
        Assert.DoesNotContain('\n', reason);
        Assert.True(BackendFactory.IsDeviceFailure(reason));
    }

    [Fact]
    public void AutoFallsBackToTheCpuWithTheReasonAndCudaIsBadInput()
    {
        IBackend? Failing(out string r) => IlgpuBackend.WithKernelsLoaded(new IlgpuBackend(_accelerator, FailOnGelu), out r);

        using (var auto = BackendFactory.Create("auto", 1, out string? note, Failing))
        {
            Assert.IsType<CpuBackend>(auto);
            Assert.NotNull(note);
            Assert.Contains("NnKernels.Gelu", note);
        }
        var e = Assert.Throws<BadInputException>(() => BackendFactory.Create("cuda", 1, out _, Failing));
        Assert.StartsWith("--device cuda: kernel NnKernels.Gelu does not build for ", e.Message);

        IBackend? Working(out string r) => IlgpuBackend.WithKernelsLoaded(new IlgpuBackend(_accelerator), out r);
        using var device = BackendFactory.Create("auto", 1, out string? none, Working);
        Assert.IsType<IlgpuBackend>(device);
        Assert.Null(none);
    }

    [Fact]
    public void NoDriverOrNoDeviceIsNotADeviceFailure()
    {
        Assert.False(BackendFactory.IsDeviceFailure(IlgpuBackend.NoDriverReason + ": could not load libcuda.so.1 or libcuda.so"));
        Assert.False(BackendFactory.IsDeviceFailure(IlgpuBackend.NoDeviceReason));
        Assert.True(BackendFactory.IsDeviceFailure("CUDA device unusable: CudaException: out of memory"));
    }
}
