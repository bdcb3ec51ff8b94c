using TaskMerge.Engine.Tensors;
using TaskMerge.Kernels;
using Xunit;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Kernels;

[Collection(IlgpuCpuCollection.Name)]
public sealed class RandomKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device, _cpu = fixture.Cpu;

    /// <summary>Known-answer vectors of Philox4x32-10 from Random123 (first two output words).</summary>
    [Theory]
    [InlineData(0UL, 0UL, 0UL, 0x6627e8d5u, 0xe169c58du)]
    [InlineData(0xffffffffffffffffUL, 0xffffffffffffffffUL, 0xffffffffffffffffUL, 0x408f276du, 0x41c83b0eu)]
    [InlineData(0x299f31d0a4093822UL, 0x0370734413198a2eUL, 0x85a308d3243f6a88UL, 0xd16cfe09u, 0x94fdccebu)]
    public void Philox_matches_the_random123_known_answers(ulong seed, ulong stream, ulong index, uint word0, uint word1) =>
        Assert.Equal(word0 | ((ulong)word1 << 32), RandomKernels.PhiloxLow(seed, stream, index));

    [Fact]
    public void KernelNormalIsWithin1e6OfCounterRng()
    {
        ulong stream = CounterRng.StreamId("layer.weight", 3);
        for (ulong i = 0; i < 200_000; i++)
        {
            float expected = CounterRng.Normal(42, stream, i), actual = RandomKernels.Normal(42, stream, i);
            if (Math.Abs(expected - actual) > 1e-6 * Math.Max(1, Math.Abs(expected)))
                Assert.Fail($"index {i}: CounterRng {expected:R}, kernel {actual:R}");
        }
    }

    [Fact]
    public void KernelLogAndCosineAgreeWithMathToFloat64Precision()
    {
        for (uint a = 0; a < 1u << 24; a += 4099)
        {
            double u = (a + 1.0) / 16777217.0;
            Assert.Equal(Math.Log(u), RandomKernels.Log(u), 1e-15 * Math.Max(1, Math.Abs(Math.Log(u))));
            Assert.Equal(Math.Cos(2 * Math.PI * a / 16777216.0), RandomKernels.CosTwoPiTurns(a), 1e-14);
        }
    }

    [Theory]
    [InlineData(37, 0.3f)]
    [InlineData(1000, 0.9f)]
    public void BernoulliKeepMatchesCpuBitForBit(int n, float p)
    {
        float[] x = RandomValues(n, 51);
        var (e, a) = Run(_device, _cpu, [x], (be, t) => be.BernoulliKeep(t[0], p, 7, CounterRng.StreamId("w", 1)), 0);
        AssertBitEqual(e, a, "bernoulli");
    }

    [Theory]
    [InlineData(new[] { 37 }, 37, 1)]
    [InlineData(new[] { 12, 50 }, 50, 1)]
    [InlineData(new[] { 6, 5, 4, 3 }, 5, 12)]
    [InlineData(new[] { 9, 1 }, 1, 1)]
    public void RankedBernoulliKeepMatchesCpuBitForBit(int[] shape, int line, int inner)
    {
        int n = shape.Aggregate(1, (a, b) => a * b);
        float[] x = RandomValues(n, 52).Select(v => MathF.Round(v * 4) / 4).ToArray();
        var (e, a) = Run(_device, _cpu, [x], [shape],
            (be, t) => be.RankedBernoulliKeep(t[0], line, inner, 0.2, 0.8, 7, CounterRng.StreamId("w", 2)), 0);
        AssertBitEqual(e, a, "ranked bernoulli");
        if (n < 20) return;
        Assert.Contains(e, v => v != 0);
        Assert.Contains(e.Select((v, i) => (v, i)), p => p.v == 0 && x[p.i] != 0);
    }

    [Fact]
    public void FillNormalMatchesCpuWithin1e6()
    {
        var (e, a) = Run(_device, _cpu, [new float[1000]], (be, t) => be.FillNormal(t[0], 9, 123), 0);
        AssertClose(e, a, 1e-6, "normal");
    }
}
