using TaskMerge.Engine.Tensors;
using Xunit;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Kernels;

[Collection(IlgpuCpuCollection.Name)]
public sealed class InterpolationKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device, _cpu = fixture.Cpu;

    [Theory]
    [InlineData(37, 0.1f)]
    [InlineData(1000, 0.5f)]
    [InlineData(1000, 0f)]
    [InlineData(300, -0.2f)]
    public void NearSwapMatchesCpuBitForBit(int n, float t)
    {
        float[] a = RandomValues(n, 1), b = RandomValues(n, 2);
        for (int i = 0; i < n; i += 7) b[i] = a[i];
        var (expected, actual) = Run(_device, _cpu, [a, b, new float[n]], (be, x) => be.NearSwap(x[0], x[1], t, x[2]), 2);
        AssertBitEqual(expected, actual, "nearswap");
    }
}
