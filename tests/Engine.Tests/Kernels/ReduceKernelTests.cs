using ILGPU;
using ILGPU.Runtime;
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

    [Theory]
    [InlineData(1)]
    [InlineData(255)]
    [InlineData(1000)]
    public void SecondStageCombinesEveryPartialOnTheDevice(int count)
    {
        var accelerator = fixture.Device.Accelerator;
        var sums = Enumerable.Range(0, count).Select(i => (double)((i * 7919) % 1013) - 500).ToArray();
        var bits = Enumerable.Range(0, count).Select(i => (uint)((i * 2654435761u) >> 2)).ToArray();
        using var partials = accelerator.Allocate1D(sums.Append(double.NaN).ToArray());
        using var maxima = accelerator.Allocate1D(bits.Append(0u).ToArray());
        var config = new KernelConfig(1, 16);
        accelerator.LoadStreamKernel<ArrayView<double>, ArrayView<double>>(ReduceKernels.SumOfPartials)(
            config, partials.View.SubView(0, count), partials.View.SubView(count, 1));
        accelerator.LoadStreamKernel<ArrayView<uint>, ArrayView<uint>>(ReduceKernels.MaxOfPartials)(
            config, maxima.View.SubView(0, count), maxima.View.SubView(count, 1));
        Assert.Equal(sums.Sum(), partials.GetAsArray1D()[count]);
        Assert.Equal(bits.Max(), maxima.GetAsArray1D()[count]);
    }
}
