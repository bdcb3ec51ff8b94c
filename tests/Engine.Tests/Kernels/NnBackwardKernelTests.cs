using ILGPU;
using ILGPU.Runtime;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// Every backward kernel of <see cref="NnKernels"/> on ILGPU's CPU accelerator against the CPU
/// backend (whose ops are checked against float64 finite differences in
/// <see cref="Models.ClipVisionBackwardTests"/>).
/// </summary>
public sealed class NnBackwardKernelTests(IlgpuCpuAccelerator fixture) : IClassFixture<IlgpuCpuAccelerator>
{
    private readonly Accelerator _acc = fixture.Accelerator;
    private readonly CpuBackend _cpu = new(2);

    private static float[] Values(int n, int seed, double scale = 1.0, double offset = 0) => Models.TinyModels.Random(new Random(seed), n, scale, offset);

    private static void AssertClose(float[] expected, float[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])),
                $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R}");
    }

    private const int Rows = 37, Cols = 21;
    private const float Eps = 1e-5f;

    /// <summary>CPU backend LayerNormBackward: (dx, dγ, dβ) after accumulating onto non-zero starts.</summary>
    private (float[] Dx, float[] Dg, float[] Db) CpuLayerNormBackward(float[] x, float[] g, float[] dy, float[] dx0, float[] dg0, float[] db0)
    {
        using var xt = _cpu.FromHost((float[])x.Clone(), Rows, Cols);
        using var gt = _cpu.FromHost((float[])g.Clone(), Cols);
        using var dyt = _cpu.FromHost((float[])dy.Clone(), Rows, Cols);
        using var dxt = _cpu.FromHost((float[])dx0.Clone(), Rows, Cols);
        using var dgt = _cpu.FromHost((float[])dg0.Clone(), Cols);
        using var dbt = _cpu.FromHost((float[])db0.Clone(), Cols);
        _cpu.LayerNormBackward(dyt, xt, gt, Eps, dxt, dgt, dbt);
        return (dxt.ToArray(), dgt.ToArray(), dbt.ToArray());
    }

    [Fact]
    public void LayerNormBackwardKernelsMatchCpu()
    {
        float[] x = Values(Rows * Cols, 12, 2, -0.4), g = Values(Cols, 13, 0.2, 1), dy = Values(Rows * Cols, 14);
        float[] dx0 = Values(Rows * Cols, 15), dg0 = Values(Cols, 16), db0 = Values(Cols, 17);
        var (dx, dg, db) = CpuLayerNormBackward(x, g, dy, dx0, dg0, db0);
        using var xd = _acc.Allocate1D(x);
        using var gd = _acc.Allocate1D(g);
        using var dyd = _acc.Allocate1D(dy);
        using var dxd = _acc.Allocate1D(dx0);
        using var dgd = _acc.Allocate1D(dg0);
        using var dbd = _acc.Allocate1D(db0);
        using var stats = _acc.Allocate1D<float>(2 * Rows);
        var rowsK = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(
            NnKernels.LayerNormBackwardRows);
        var colsK = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(
            NnKernels.LayerNormBackwardColumns);
        rowsK(Rows, dyd.View, xd.View, gd.View, dxd.View, stats.View, Cols, Eps);
        colsK(Cols, dyd.View, xd.View, stats.View, dgd.View, dbd.View, Rows, Cols);
        AssertClose(dx, dxd.GetAsArray1D(), 1e-6, "dx");
        AssertClose(dg, dgd.GetAsArray1D(), 1e-6, "dgamma");
        AssertClose(db, dbd.GetAsArray1D(), 1e-6, "dbeta");
    }

    [Fact]
    public void ActivationAndSoftmaxBackwardKernelsMatchCpu()
    {
        float[] x = [.. Values(250, 18, 3), 0f, -9f, 9f], dy = Values(x.Length, 19);
        var pairs = new (Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Kernel, Action<Tensor, Tensor, Tensor> Op, string Name)[]
        {
            (NnKernels.GeluBackward, _cpu.GeluBackward, "gelu"),
            (NnKernels.QuickGeluBackward, _cpu.QuickGeluBackward, "quick_gelu"),
        };
        foreach (var (kernel, op, name) in pairs)
        {
            using var xt = _cpu.FromHost((float[])x.Clone(), x.Length);
            using var dyt = _cpu.FromHost((float[])dy.Clone(), x.Length);
            using var dxt = _cpu.Empty(x.Length);
            op(xt, dyt, dxt);
            using var xd = _acc.Allocate1D(x);
            using var dyd = _acc.Allocate1D(dy);
            using var dxd = _acc.Allocate1D<float>(x.Length);
            _acc.LoadAutoGroupedStreamKernel(kernel)(x.Length, xd.View, dyd.View, dxd.View);
            AssertClose(dxt.ToArray(), dxd.GetAsArray1D(), 0, name);
        }

        const int rows = 9, n = 17;
        const float scale = 0.125f;
        float[] g = Values(rows * n, 20), logits = Values(rows * n, 21, 2);
        using var yt = _cpu.FromHost((float[])logits.Clone(), rows, n);
        _cpu.SoftmaxRows(yt, yt, scale);
        var y = yt.ToArray();
        using var gt = _cpu.FromHost((float[])g.Clone(), rows, n);
        using var ot = _cpu.Empty(rows, n);
        _cpu.SoftmaxRowsBackward(yt, gt, ot, scale);
        using var yd = _acc.Allocate1D(y);
        using var gd = _acc.Allocate1D(g);
        using var od = _acc.Allocate1D<float>(rows * n);
        _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(NnKernels.SoftmaxRowsBackward)(
            rows, yd.View, gd.View, od.View, n, scale);
        AssertClose(ot.ToArray(), od.GetAsArray1D(), 1e-6, "softmax-backward");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(6)]
    public void AddRowVectorBackwardKernelMatchesCpu(int period)
    {
        const int rows = 23, n = 9;
        float[] dy = Values(rows * n, 22 + period), start = Values(period * n, 23);
        using var dyt = _cpu.FromHost((float[])dy.Clone(), rows, n);
        using var drt = _cpu.FromHost((float[])start.Clone(), period, n);
        _cpu.AddRowVectorBackward(dyt, drt);
        using var dyd = _acc.Allocate1D(dy);
        using var drd = _acc.Allocate1D(start);
        _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(NnKernels.AddRowVectorBackward)(
            period * n, dyd.View, drd.View, n, period, rows);
        AssertClose(drt.ToArray(), drd.GetAsArray1D(), 0, "add-row-vector-backward");
    }

    [Fact]
    public void ScatterAddRowsKernelMatchesCpu()
    {
        const int tableRows = 11, n = 6;
        int[] rows = [10, 3, 0, 5];
        float[] src = Values(rows.Length * n, 24), table = Values(tableRows * n, 25);
        using var st = _cpu.FromHost((float[])src.Clone(), rows.Length, n);
        using var tt = _cpu.FromHost((float[])table.Clone(), tableRows, n);
        _cpu.ScatterAddRows(st, rows, tt);
        using var sd = _acc.Allocate1D(src);
        using var rd = _acc.Allocate1D(rows);
        using var td = _acc.Allocate1D(table);
        _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(NnKernels.ScatterAddRows)(
            src.Length, sd.View, rd.View, td.View, n);
        AssertClose(tt.ToArray(), td.GetAsArray1D(), 0, "scatter-add-rows");
    }
}

/// <summary>The backward ops through <see cref="Tensors.Ilgpu.IlgpuBackend"/> (on ILGPU's CPU accelerator) against the CPU backend.</summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class IlgpuBackwardOpTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device;
    private readonly CpuBackend _cpu = new(2);

    private static float[] Values(int n, int seed, double scale = 1.0, double offset = 0) => Models.TinyModels.Random(new Random(seed), n, scale, offset);

    private float[] OnBoth(Func<IBackend, float[]> run, double tol, string what)
    {
        var want = run(_cpu);
        var got = run(_device);
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) <= tol * Math.Max(1, Math.Abs(want[i])), $"{what}[{i}]: cpu {want[i]:R}, device {got[i]:R}");
        return want;
    }

    [Fact]
    public void BackwardOpsMatchCpu()
    {
        const int rows = 11, n = 13;
        float[] x = Values(rows * n, 1, 2), g = Values(n, 2, 0.2, 1), dy = Values(rows * n, 3), dx0 = Values(rows * n, 4), dg0 = Values(n, 5), db0 = Values(n, 6);
        OnBoth(be =>
        {
            using var xt = be.FromHost((float[])x.Clone(), rows, n);
            using var gt = be.FromHost((float[])g.Clone(), n);
            using var dyt = be.FromHost((float[])dy.Clone(), rows, n);
            using var dxt = be.FromHost((float[])dx0.Clone(), rows, n);
            using var dgt = be.FromHost((float[])dg0.Clone(), n);
            using var dbt = be.FromHost((float[])db0.Clone(), n);
            be.LayerNormBackward(dyt, xt, gt, 1e-5f, dxt, dgt, dbt);
            return [.. dxt.ToArray(), .. dgt.ToArray(), .. dbt.ToArray()];
        }, 1e-6, "layernorm-backward");
        OnBoth(be =>
        {
            using var xt = be.FromHost((float[])x.Clone(), rows, n);
            using var dyt = be.FromHost((float[])dy.Clone(), rows, n);
            using var a = be.Empty(rows, n);
            using var b = be.Empty(rows, n);
            be.GeluBackward(xt, dyt, a);
            be.QuickGeluBackward(xt, dyt, b);
            return [.. a.ToArray(), .. b.ToArray()];
        }, 0, "activation-backward");
        OnBoth(be =>
        {
            using var yt = be.FromHost((float[])x.Clone(), rows, n);
            be.SoftmaxRows(yt, yt, 0.5f);
            using var dyt = be.FromHost((float[])dy.Clone(), rows, n);
            be.SoftmaxRowsBackward(yt, dyt, dyt, 0.5f);
            return dyt.ToArray();
        }, 1e-6, "softmax-backward");
        OnBoth(be =>
        {
            using var dyt = be.FromHost((float[])dy.Clone(), rows, n);
            using var bias = be.FromHost((float[])dg0.Clone(), n);
            using var pos = be.FromHost(Values(4 * n, 7), 4, n);
            be.AddRowVectorBackward(dyt, bias);
            be.AddRowVectorBackward(dyt, pos);
            return [.. bias.ToArray(), .. pos.ToArray()];
        }, 1e-7, "add-row-vector-backward");
        OnBoth(be =>
        {
            using var src = be.FromHost(Values(3 * n, 8), 3, n);
            using var one = be.FromHost(Values(n, 9), n);
            using var table = be.FromHost((float[])x.Clone(), rows, n);
            be.ScatterAddRows(src, [4, 10, 0], table);
            be.ScatterAddRows(one, [7], table);
            Assert.Throws<ArgumentException>(() => be.ScatterAddRows(src, [4, 4, 0], table));
            Assert.Throws<ArgumentOutOfRangeException>(() => be.ScatterAddRows(src, [4, rows, 0], table));
            return table.ToArray();
        }, 0, "scatter-add-rows");
    }
}
