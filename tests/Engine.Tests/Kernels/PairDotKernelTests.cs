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

        // Vectors too long to stack into one buffer take one launch per pair, with the same layout and sums.
        var diagnostics = fixture.Device.Diagnostics;
        diagnostics.MaxStackedElements = length;
        try
        {
            var perPair = RunOn(fixture.Device);
            Assert.Equal(dev, perPair);
        }
        finally
        {
            diagnostics.MaxStackedElements = int.MaxValue;
        }
    }
}

[Collection(IlgpuCpuCollection.Name)]
public sealed class MatrixKernelTests(IlgpuCpuFixture fixture)
{
    [Fact]
    public void Copy_block_and_scale_columns_match_the_cpu_backend()
    {
        var a = RandomValues(7 * 9, 60);
        var scales = RandomValues(9, 61);
        float[] RunOn(IBackend b)
        {
            using var src = Load(b, a, 7, 9);
            using var dst = Load(b, new float[5 * 6], 5, 6);
            b.CopyBlock(src, 2, 3, dst, 1, 0, 4, 6);
            using var sc = Load(b, scales);
            using var scaled = b.Empty(7, 9);
            b.ScaleColumns(src, sc, scaled);
            return dst.ToArray().Concat(scaled.ToArray()).ToArray();
        }
        Assert.Equal(RunOn(fixture.Cpu), RunOn(fixture.Device));
    }

    [Fact]
    public void Svd_and_eigen_on_the_device_backend_reconstruct_their_input()
    {
        var a = RandomValues(6 * 4, 62);
        var dev = fixture.Device;
        using var t = Load(dev, a, 6, 4);
        using var u = dev.Empty(6, 4);
        using var s = dev.Empty(4);
        using var vt = dev.Empty(4, 4);
        dev.Svd(t, u, s, vt);
        float[] U = u.ToArray(), S = s.ToArray(), V = vt.ToArray();
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 4; j++)
            {
                double r = 0;
                for (int k = 0; k < 4; k++) r += U[i * 4 + k] * S[k] * V[k * 4 + j];
                Assert.Equal(a[i * 4 + j], r, 1e-5);
            }
        Assert.True(S[0] >= S[1] && S[1] >= S[2] && S[2] >= S[3]);
    }

    [Fact]
    public void Cholesky_solve_on_the_device_backend_matches_the_cpu_backend()
    {
        var g = RandomValues(5 * 5, 63);
        var spd = new float[25];
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++)
            {
                double s = i == j ? 1 : 0;
                for (int k = 0; k < 5; k++) s += g[i * 5 + k] * g[j * 5 + k];
                spd[i * 5 + j] = (float)s;
            }
        var rhs = RandomValues(3 * 5, 64);
        float[] RunOn(IBackend b)
        {
            using var a = Load(b, spd, 5, 5);
            using var x = Load(b, rhs, 3, 5);
            Assert.True(b.CholeskySolve(a, 0.1, x));
            return x.ToArray();
        }
        Assert.Equal(RunOn(fixture.Cpu), RunOn(fixture.Device));
    }
}
