using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tests.Tensors;

/// <summary>The CPU backend's SIMD and radix forms against the scalar rules they replace, element for element.</summary>
public class CpuFastPathTests
{
    [Theory]
    [InlineData(0UL, 1UL, 0.3f)]
    [InlineData(0xFEDC_BA98_7654_3210UL, 0x8000_0001_0000_0003UL, 0.7f)]
    [InlineData(42UL, 0xFFFF_FFFF_FFFF_FFFFUL, 0.0f)]
    public void Bernoulli_keep_equals_the_scalar_philox_rule(ulong seed, ulong stream, float p)
    {
        const int n = 3 * CpuBackend.Chunk + 21;
        var values = Enumerable.Range(0, n).Select(i => i % 7 == 0 ? float.NaN : i * 0.001f - 50f).ToArray();
        var cpu = new CpuBackend(2);
        using var t = cpu.Wrap((float[])values.Clone(), n);
        cpu.BernoulliKeep(t, p, seed, stream);
        var got = CpuBackend.Span(t);
        for (int i = 0; i < n; i++)
        {
            float expected = RandomKernels.Uniform(seed, stream, (ulong)i) < p ? values[i] : 0f;
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got[i]), $"element {i}: expected {expected}, got {got[i]}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2048)]
    [InlineData(5632)]
    public void Radix_rank_orders_as_the_comparison_sort_of_magnitudes(int line)
    {
        var r = new Random(line);
        // Few distinct magnitudes, both signs and zeros of both signs: many ties.
        var v = Enumerable.Range(0, line).Select(_ => (r.Next(2) == 0 ? -1 : 1) * r.Next(40) * 0.125f).ToArray();
        var magnitudes = v.Select(Math.Abs).ToArray();
        var expected = Enumerable.Range(0, line).ToArray();
        Array.Sort(expected, (a, b) => magnitudes[a] != magnitudes[b] ? magnitudes[a].CompareTo(magnitudes[b]) : b.CompareTo(a));
        var keys = v.Select(x => BitConverter.SingleToUInt32Bits(Math.Abs(x)) + 1).ToArray();
        var order = new int[line];
        MagnitudeRank.SortAscending(keys, order, new int[line]);
        Assert.Equal(expected, order);
    }
}
