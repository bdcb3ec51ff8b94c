using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tensors.Ilgpu;
using TaskMerge.Kernels;
using Xunit;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// The group-cooperative kernels (reductions, tie ranking, tiled GEMM) on a simulated device with
/// GPU-sized groups: 256 threads per group and 16×16 GEMM tiles, as the CUDA backend launches them.
/// </summary>
public sealed class GpuShapedGroupTests : IDisposable
{
    private readonly Context _context;
    private readonly Accelerator _accelerator;
    private readonly IlgpuBackend _device;
    private readonly CpuBackend _cpu = new(2);

    public GpuShapedGroupTests()
    {
        _context = Context.Create(builder => builder.CPU(device => device.MaxNumThreadsPerGroup == 256));
        _accelerator = _context.CreateCPUAccelerator(0);
        _device = new IlgpuBackend(_accelerator);
    }

    [Fact]
    public void ReductionsTopKAndGemmMatchCpuWith256ThreadGroups()
    {
        Assert.Equal(256, _accelerator.MaxNumThreadsPerGroup);
        int n = ReduceKernels.ChunkSize + 777;
        AssertReductions(_device, _cpu, RandomValues(n, 90, 4f), RandomValues(n, 91), 1e-6);

        float[] x = TiedValues(n, 92, distinct: 3);
        long k = x.Count(v => MathF.Abs(v) == 0.5f) + x.Take(ReduceKernels.ChunkSize).Count(v => MathF.Abs(v) == 0.25f) + 100;
        AssertTopK(_device, _cpu, x, k);

        AssertGemm(_device, _cpu, 33, 20, 40, true, false, 1f, 0.5f, 1e-6, 93);
        AssertSyrk(_device, _cpu, 17, 35, false, 1f, 0f, 1e-6, 94);
    }

    public void Dispose()
    {
        _device.Dispose();
        _accelerator.Dispose();
        _context.Dispose();
    }
}
