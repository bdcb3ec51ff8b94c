using TaskMerge.Engine.Tensors;
using TaskMerge.Kernels;
using Xunit;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Kernels;

[Collection(IlgpuCpuCollection.Name)]
public sealed class ReduceKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device, _cpu = fixture.Cpu;

    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(1000)]
    [InlineData(2 * ReduceKernels.ChunkSize + 123)]
    public void ReductionsMatchCpuWithin1e6(int n)
    {
        AssertReductions(_device, _cpu, RandomValues(n, 10, scale: 3f), RandomValues(n, 11), 1e-6);
    }

    [Fact]
    public void ReductionsAreIdenticalFromRunToRun()
    {
        float[] x = RandomValues(2 * ReduceKernels.ChunkSize + 7, 12, scale: 1e3f);
        using var t = Load(_device, x);
        double first = _device.Sum(t);
        for (int i = 0; i < 3; i++) Assert.Equal(BitConverter.DoubleToInt64Bits(first), BitConverter.DoubleToInt64Bits(_device.Sum(t)));
    }

    [Fact]
    public void MaxAbsSeesNegativesInfinityAndNaN()
    {
        float[] x = RandomValues(1000, 13);
        x[777] = -5f;
        using var t = Load(_device, x);
        Assert.Equal(5f, _device.MaxAbs(t));
        x[3] = float.NegativeInfinity;
        _device.Upload(x, t);
        Assert.Equal(float.PositiveInfinity, _device.MaxAbs(t));
        x[900] = float.NaN;
        _device.Upload(x, t);
        Assert.True(float.IsNaN(_device.MaxAbs(t)));
    }
}
