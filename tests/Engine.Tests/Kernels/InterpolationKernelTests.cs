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

[Collection(IlgpuCpuCollection.Name)]
public sealed class RamKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device, _cpu = fixture.Cpu;

    private static float[] Sparse(int n, int seed)
    {
        var v = RandomValues(n, seed);
        for (int i = 0; i < n; i += 3) v[i] = 0;
        for (int i = 1; i < n; i += 7) v[i] = 1e-6f;
        return v;
    }

    [Theory]
    [InlineData(37)]
    [InlineData(1000)]
    public void RamOpsMatchCpuBitForBit(int n)
    {
        float[] a = Sparse(n, 1), b = Sparse(n, 2), counts = new float[n];
        for (int i = 0; i < n; i++) counts[i] = i % 4;
        var (e, d) = Run(_device, _cpu, [a, (float[])counts.Clone()], (be, t) => be.CountMagnitudeAbove(t[0], 1e-5f, t[1]), 1);
        AssertBitEqual(e, d, "count contributors");
        (e, d) = Run(_device, _cpu, [a, counts, b], (be, t) => be.RamAccumulate(t[0], 1e-5f, t[1], 1.25f, t[2]), 2);
        AssertBitEqual(e, d, "accumulate");
        (e, d) = Run(_device, _cpu, [a, counts, new float[n], new float[n]], (be, t) => be.RamClassify(t[0], 1e-5f, t[1], t[2], t[3]), 2);
        AssertBitEqual(e, d, "classify unique");
        (e, d) = Run(_device, _cpu, [a, counts, new float[n], new float[n]], (be, t) => be.RamClassify(t[0], 1e-5f, t[1], t[2], t[3]), 3);
        AssertBitEqual(e, d, "classify shared");
    }
}

[Collection(IlgpuCpuCollection.Name)]
public sealed class ConsensusKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device, _cpu = fixture.Cpu;

    [Theory]
    [InlineData(37)]
    [InlineData(1000)]
    public void SignAgreeAccumulateAndDivClampedBelowMatchCpuBitForBit(int n)
    {
        float[] x = RandomValues(n, 1), total = RandomValues(n, 2), num = RandomValues(n, 3), den = RandomValues(n, 4);
        for (int i = 0; i < n; i += 5) { x[i] = 0; total[i] = 0; }
        var (e, d) = Run(_device, _cpu, [x, total, num, den], (be, t) => be.SignAgreeAccumulate(t[0], t[1], 0.7f, t[2], t[3]), 2);
        AssertBitEqual(e, d, "numerator");
        (e, d) = Run(_device, _cpu, [x, total, num, den], (be, t) => be.SignAgreeAccumulate(t[0], t[1], 0.7f, t[2], t[3]), 3);
        AssertBitEqual(e, d, "denominator");
        for (int i = 0; i < n; i += 4) den[i] = 1e-9f;
        (e, d) = Run(_device, _cpu, [num, den, new float[n]], (be, t) => be.DivClampedBelow(t[0], t[1], 1e-6f, t[2]), 2);
        AssertBitEqual(e, d, "divide");
    }
}

[Collection(IlgpuCpuCollection.Name)]
public sealed class ArceeFusionKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device, _cpu = fixture.Cpu;

    [Theory]
    [InlineData(7, 5)]
    [InlineData(64, 33)]
    public void ImportanceMatchesCpu(int rows, int row)
    {
        float[] a = RandomValues(rows * row, 1), b = RandomValues(rows * row, 2);
        int[][] shapes = [[rows, row], [rows, row], [rows, row]];
        var (e, d) = Run(_device, _cpu, [b, a, new float[rows * row]], shapes, (be, t) => be.ArceeFusionImportance(t[0], t[1], row, t[2]), 2);
        for (int i = 0; i < e.Length; i++) Assert.True(Math.Abs(e[i] - d[i]) <= 1e-6f * Math.Abs(e[i]) + 1e-12f, $"element {i}: {e[i]} vs {d[i]}");
    }
}
