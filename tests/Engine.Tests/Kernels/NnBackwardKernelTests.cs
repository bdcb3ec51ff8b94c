using ILGPU;
using ILGPU.Runtime;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// The backward ops of <see cref="IBackend"/>: the CPU backend against the finite-difference-checked
/// <see cref="ClipVisionBackward"/> ops, and every backward kernel of <see cref="NnKernels"/> on
/// ILGPU's CPU accelerator against the CPU backend.
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
    public void CpuLayerNormBackwardMatchesTheCheckedOpAndAccumulates()
    {
        float[] x = Values(Rows * Cols, 1, 2, 0.3), g = Values(Cols, 2, 0.2, 1), b = Values(Cols, 3), dy = Values(Rows * Cols, 4);
        float[] dx0 = Values(Rows * Cols, 5), dg0 = Values(Cols, 6), db0 = Values(Cols, 7);
        var (dx, dg, db) = CpuLayerNormBackward(x, g, dy, dx0, dg0, db0);
        float[] y = new float[x.Length], mean = new float[Rows], rstd = new float[Rows];
        ClipVisionBackward.LayerNormForward(x, Rows, Cols, g, b, Eps, y, mean, rstd, 1);
        float[] ex = (float[])dx0.Clone(), eg = (float[])dg0.Clone(), eb = (float[])db0.Clone();
        ClipVisionBackward.LayerNormBackward(dy, x, mean, rstd, g, Rows, Cols, ex, eg, eb, 1);
        AssertClose(ex, dx, 1e-6, "dx");
        AssertClose(eg, dg, 1e-6, "dgamma");
        AssertClose(eb, db, 1e-6, "dbeta");
    }

    [Fact]
    public void CpuActivationAndSoftmaxBackwardMatchTheCheckedOps()
    {
        float[] x = Values(300, 8, 3), dy = Values(300, 9);
        foreach (var (act, op) in new (Activation, Action<Tensor, Tensor, Tensor>)[] { (Activation.Gelu, _cpu.GeluBackward), (Activation.QuickGelu, _cpu.QuickGeluBackward) })
        {
            var expected = new float[x.Length];
            ClipVisionBackward.ActivationBackward(act, x, dy, expected, 1);
            using var xt = _cpu.FromHost((float[])x.Clone(), 300);
            using var dyt = _cpu.FromHost((float[])dy.Clone(), 300);
            using var dxt = _cpu.Empty(300);
            op(xt, dyt, dxt);
            AssertClose(expected, dxt.ToArray(), 0, act.ToString());
        }

        const int rows = 12, n = 25;
        const float scale = 0.4f;
        float[] logits = Values(rows * n, 10, 2), g = Values(rows * n, 11);
        float[] y = new float[rows * n], want = new float[rows * n];
        for (int r = 0; r < rows; r++)
        {
            ClipVisionBackward.SoftmaxForward(logits.AsSpan(r * n, n), scale, y.AsSpan(r * n, n));
            ClipVisionBackward.SoftmaxBackward(y.AsSpan(r * n, n), g.AsSpan(r * n, n), scale, want.AsSpan(r * n, n));
        }
        using var yt = _cpu.FromHost((float[])y.Clone(), rows, n);
        using var gt = _cpu.FromHost((float[])g.Clone(), rows, n);
        _cpu.SoftmaxRowsBackward(yt, gt, gt, scale);   // in place: dx may be dy
        AssertClose(want, gt.ToArray(), 0, "softmax-backward");
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
        float[] y = new float[rows * n], g = Values(rows * n, 20), logits = Values(rows * n, 21, 2);
        for (int r = 0; r < rows; r++) ClipVisionBackward.SoftmaxForward(logits.AsSpan(r * n, n), scale, y.AsSpan(r * n, n));
        using var yt = _cpu.FromHost((float[])y.Clone(), rows, n);
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
    }
}
