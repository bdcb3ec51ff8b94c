using TaskMerge.Engine.Tensors;
using Xunit;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Kernels;

[Collection(IlgpuCpuCollection.Name)]
public sealed class TiesKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device, _cpu = fixture.Cpu;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(11)]
    public void SignConsensusMatchesCpuBitForBit(int experts)
    {
        // Tied magnitudes make exact zeros, zero totals and sign ties common.
        var weighted = Enumerable.Range(0, experts)
            .Select(k => k % 2 == 0 ? RandomValues(300, 30 + k, scale: 1e-2f) : TiedValues(300, 30 + k, distinct: 3))
            .ToArray();
        float[] weights = Enumerable.Range(0, experts).Select(k => 0.3f + 0.1f * k).ToArray();
        AssertSignConsensus(_device, _cpu, weighted, weights);
    }

    [Fact]
    public void OppositeExpertsGiveZeroMixAndUnitDivisor()
    {
        float[] a = RandomValues(37, 40);
        float[] b = a.Select(v => -v).ToArray();
        AssertSignConsensus(_device, _cpu, [a, b], [1f, 1f]);
    }

    [Fact]
    public void TooFewWeightsAreRejected()
    {
        using var a = _device.Empty(5);
        using var mixed = _device.Empty(5);
        using var divisor = _device.Empty(5);
        Assert.Throws<ArgumentException>(() => _device.SignConsensus([a, a], [1f], mixed, divisor));
    }
}
