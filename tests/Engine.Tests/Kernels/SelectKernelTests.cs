using TaskMerge.Engine.Tensors;
using TaskMerge.Kernels;
using Xunit;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Kernels;

[Collection(IlgpuCpuCollection.Name)]
public sealed class SelectKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device, _cpu = fixture.Cpu;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(500)]
    [InlineData(999)]
    [InlineData(1000)]
    [InlineData(5000)]
    public void TopKOfDistinctValuesMatchesCpu(long k) => AssertTopK(_device, _cpu, RandomValues(1000, 20), k);

    [Theory]
    [InlineData(1)]
    [InlineData(150)]
    [InlineData(300)]
    [InlineData(451)]
    public void TiesAtTheThresholdAreKeptByLowestIndex(long k) => AssertTopK(_device, _cpu, TiedValues(1000, 21), k);

    [Fact]
    public void TiesAcrossChunksAreKeptByLowestFlatIndex()
    {
        // Three chunks of magnitudes {0, 0.25, 0.5}; k keeps every 0.5 and the 0.25s of the first
        // chunk plus 2000 more, so the cut falls inside the second chunk.
        int n = 2 * ReduceKernels.ChunkSize + 500;
        float[] x = TiedValues(n, 22, distinct: 3);
        long aboveThreshold = x.Count(v => MathF.Abs(v) == 0.5f);
        long tiesInFirstChunk = x.Take(ReduceKernels.ChunkSize).Count(v => MathF.Abs(v) == 0.25f);
        long k = aboveThreshold + tiesInFirstChunk + 2000;
        AssertTopK(_device, _cpu, x, k);

        using var t = Load(_device, x);
        _device.KeepTopKMagnitude(t, k);
        Assert.Equal(k, t.ToArray().Count(v => v != 0f));
    }

    [Fact]
    public void MagnitudeKeysOrderNegativeZeroInfinityAndNaNAsCpu()
    {
        float[] x = RandomValues(300, 23);
        x[0] = -0f;
        x[1] = float.PositiveInfinity;
        x[2] = float.NaN;
        x[3] = -float.Epsilon;
        AssertTopK(_device, _cpu, x, 2);
        AssertTopK(_device, _cpu, x, 150);
        AssertTopK(_device, _cpu, x, 299);
    }
}
