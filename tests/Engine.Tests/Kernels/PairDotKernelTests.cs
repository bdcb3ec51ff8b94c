using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Kernels;

[Collection(IlgpuCpuCollection.Name)]
public sealed class PairDotKernelTests(IlgpuCpuFixture fixture)
{
    [Theory]
    [InlineData(12, 3, true)]
    [InlineData(12, 3, false)]
    [InlineData(60, 60, true)]
    public void Block_pair_dots_match_the_cpu_backend(int length, int blockLength, bool gram)
    {
        var xv = Enumerable.Range(0, 3).Select(i => RandomValues(length, 40 + i)).ToArray();
        var yv = Enumerable.Range(0, 2).Select(i => RandomValues(length, 50 + i)).ToArray();
        double[] RunOn(IBackend b)
        {
            var xs = xv.Select(v => Load(b, v)).ToList();
            var ys = gram ? xs : yv.Select(v => Load(b, v)).ToList();
            var dst = new double[length / blockLength * xs.Count * ys.Count];
            b.BlockDot(xs, ys, blockLength, dst);
            foreach (var t in xs.Concat(ys).Distinct()) t.Dispose();
            return dst;
        }
        var cpu = RunOn(fixture.Cpu);
        var dev = RunOn(fixture.Device);
        for (int i = 0; i < cpu.Length; i++) Assert.Equal(cpu[i], dev[i], 1e-12);
    }
}
