using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tensors.Ilgpu;
using Xunit;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// One <see cref="IlgpuBackend"/> on ILGPU's CPU accelerator (a thread-level simulator of a GPU)
/// shared by the kernel tests, so each kernel is compiled once; next to it the CPU backend twin.
/// </summary>
public sealed class IlgpuCpuFixture : IDisposable
{
    private readonly Context _context;
    private readonly Accelerator _accelerator;

    public IlgpuCpuFixture()
    {
        _context = Context.Create(builder => builder.CPU());
        _accelerator = _context.CreateCPUAccelerator(0);
        Device = new IlgpuBackend(_accelerator);
    }

    public IlgpuBackend Device { get; }

    public CpuBackend Cpu { get; } = new(2);

    public void Dispose()
    {
        Device.Dispose();
        _accelerator.Dispose();
        _context.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class IlgpuCpuCollection : ICollectionFixture<IlgpuCpuFixture>
{
    public const string Name = "ILGPU CPU accelerator";
}
