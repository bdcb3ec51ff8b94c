using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>One ILGPU CPU accelerator (a thread simulator) shared by the NN kernel tests.</summary>
public sealed class IlgpuCpuAccelerator : IDisposable
{
    public IlgpuCpuAccelerator()
    {
        Context = Context.Create(b => b.CPU());
        Accelerator = Context.CreateCPUAccelerator(0);
    }

    public Context Context { get; }

    public Accelerator Accelerator { get; }

    public void Dispose()
    {
        Accelerator.Dispose();
        Context.Dispose();
    }
}

/// <summary>
/// Every kernel of <see cref="NnKernels"/> run on ILGPU's CPU accelerator at tiny sizes against the
/// CPU backend op it twins.
/// </summary>
public sealed class NnKernelTests(IlgpuCpuAccelerator fixture) : IClassFixture<IlgpuCpuAccelerator>
{
    private readonly Accelerator _acc = fixture.Accelerator;
    private readonly CpuBackend _cpu = new(2);

    private static float[] Values(int n, int seed, double scale = 1.0) => Models.TinyModels.Random(new Random(seed), n, scale);

    private MemoryBuffer1D<float, Stride1D.Dense> Buffer(float[] values) => _acc.Allocate1D(values);

    private static void AssertClose(float[] expected, float[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])),
                $"{what}[{i}]: cpu {expected[i]:R}, kernel {actual[i]:R}");
    }

    [Fact]
    public void LayerNormMatchesCpu()
    {
        const int rows = 5, cols = 19;
        float[] x = Values(rows * cols, 1, 3), g = Values(cols, 2), b = Values(cols, 3);
        using var xt = _cpu.FromHost((float[])x.Clone(), rows, cols);
        using var gt = _cpu.FromHost(g, cols);
        using var bt = _cpu.FromHost(b, cols);
        using var yt = _cpu.Empty(rows, cols);
        _cpu.LayerNorm(xt, gt, bt, 1e-5f, yt);

        using var xd = Buffer(x);
        using var gd = Buffer(g);
        using var bd = Buffer(b);
        using var yd = _acc.Allocate1D<float>(rows * cols);
        var k = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(NnKernels.LayerNorm);
        k(rows, xd.View, gd.View, bd.View, yd.View, cols, 1e-5f);
        AssertClose(yt.ToArray(), yd.GetAsArray1D(), 1e-6, "layernorm");
    }

    [Fact]
    public void AddRowVectorMatchesCpuForBiasAndPeriodicRows()
    {
        const int rows = 6, cols = 7;
        float[] x = Values(rows * cols, 4), bias = Values(cols, 5), table = Values(3 * cols, 6);
        var k = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(NnKernels.AddRowVector);
        foreach (var (rowsValues, period) in new[] { (bias, 1), (table, 3) })
        {
            using var xt = _cpu.FromHost((float[])x.Clone(), rows, cols);
            using var vt = period == 1 ? _cpu.FromHost(rowsValues, cols) : _cpu.FromHost(rowsValues, period, cols);
            using var yt = _cpu.Empty(rows, cols);
            _cpu.AddRowVector(xt, vt, yt);
            using var xd = Buffer(x);
            using var vd = Buffer(rowsValues);
            using var yd = _acc.Allocate1D<float>(rows * cols);
            k(rows * cols, xd.View, vd.View, yd.View, cols, period);
            AssertClose(yt.ToArray(), yd.GetAsArray1D(), 0, $"add-row-vector p={period}");
        }
    }

    [Fact]
    public void ActivationsMatchCpuBitForBit()
    {
        float[] x = Values(200, 7, 3);
        var kernels = new (Action<Index1D, ArrayView<float>, ArrayView<float>> Kernel, Action<Tensor, Tensor> Op, string Name)[]
        {
            (NnKernels.Gelu, _cpu.Gelu, "gelu"),
            (NnKernels.QuickGelu, _cpu.QuickGelu, "quick_gelu"),
            (NnKernels.Tanh, _cpu.Tanh, "tanh"),
        };
        foreach (var (kernel, op, name) in kernels)
        {
            using var xt = _cpu.FromHost((float[])x.Clone(), x.Length);
            using var yt = _cpu.Empty(x.Length);
            op(xt, yt);
            using var xd = Buffer(x);
            using var yd = _acc.Allocate1D<float>(x.Length);
            _acc.LoadAutoGroupedStreamKernel(kernel)(x.Length, xd.View, yd.View);
            AssertClose(yt.ToArray(), yd.GetAsArray1D(), 0, name);
        }
    }

    [Fact]
    public void SoftmaxMatchesCpuWithAndWithoutMaskBias()
    {
        const int batch = 2, heads = 3, seq = 5;
        float[] scores = Values(batch * heads * seq * seq, 8, 4);
        var mask = new float[batch * seq];
        mask[3] = mask[4] = mask[9] = float.MinValue;
        var k = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>(NnKernels.SoftmaxRows);
        foreach (bool masked in new[] { false, true })
        {
            using var st = _cpu.FromHost((float[])scores.Clone(), batch * heads, seq, seq);
            using var bt = _cpu.FromHost((float[])mask.Clone(), batch, seq);
            using var pt = _cpu.Empty(batch * heads, seq, seq);
            _cpu.SoftmaxRows(st, pt, 0.35f, masked ? bt : null, heads * seq);
            var expected = pt.ToArray();
            if (masked)
            {
                Assert.Equal(0f, expected[3]);
                Assert.Equal(0f, expected[heads * seq * seq + 4]);
            }
            using var sd = Buffer(scores);
            using var bd = Buffer(mask);
            using var pd = _acc.Allocate1D<float>(scores.Length);
            k(batch * heads * seq, sd.View, bd.View, pd.View, seq, 0.35f, heads * seq, masked ? 1 : 0);
            AssertClose(expected, pd.GetAsArray1D(), 2e-7, masked ? "masked softmax" : "softmax");
        }
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void BatchedGemmMatchesCpu(bool transA, bool transB)
    {
        // The second shape is large enough for the CPU backend's packed per-batch SGEMM path.
        foreach (var (batch, m, n, k) in new[] { (3, 4, 5, 6), (3, 17, 23, 19) })
        {
            float[] a = Values(batch * m * k, 9), b = Values(batch * k * n, 10), c0 = Values(batch * m * n, 11);
            using var at = transA ? _cpu.FromHost((float[])a.Clone(), batch, k, m) : _cpu.FromHost((float[])a.Clone(), batch, m, k);
            using var bt = transB ? _cpu.FromHost((float[])b.Clone(), batch, n, k) : _cpu.FromHost((float[])b.Clone(), batch, k, n);
            using var ct = _cpu.FromHost((float[])c0.Clone(), batch, m, n);
            _cpu.GemmStridedBatched(at, transA, bt, transB, ct, 0.5f, 0.25f);
            using var ad = Buffer(a);
            using var bd = Buffer(b);
            using var cd = Buffer(c0);
            _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchedGemmShape>(NnKernels.GemmStridedBatched)(
                batch * m * n, ad.View, bd.View, cd.View, new BatchedGemmShape(m, n, k, transA, transB, 0.5f, 0.25f));
            AssertClose(ct.ToArray(), cd.GetAsArray1D(), 1e-5, "batched gemm");

            // And against a plain triple loop.
            var expected = new float[batch * m * n];
            for (int q = 0; q < batch; q++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int p = 0; p < k; p++)
                            s += (transA ? a[q * m * k + p * m + i] : a[q * m * k + i * k + p]) * (double)(transB ? b[q * k * n + j * k + p] : b[q * k * n + p * n + j]);
                        expected[(q * m + i) * n + j] = (float)(0.5 * s + 0.25 * c0[(q * m + i) * n + j]);
                    }
            AssertClose(expected, ct.ToArray(), 1e-5, "cpu batched gemm vs loop");
        }
    }

    [Fact]
    public void SplitAndMergeHeadsMatchCpuAndInvertEachOther()
    {
        const int batch = 2, seq = 3, heads = 4, d = 5;
        float[] x = Values(batch * seq * heads * d, 12);
        using var xt = _cpu.FromHost((float[])x.Clone(), batch * seq, heads * d);
        using var ht = _cpu.Empty(batch * heads, seq, d);
        using var back = _cpu.Empty(batch * seq, heads * d);
        _cpu.SplitHeads(xt, ht, heads);
        _cpu.MergeHeads(ht, back, heads);
        Assert.Equal(x, back.ToArray());
        var split = ht.ToArray();
        Assert.Equal(x[(1 * seq + 2) * heads * d + 3 * d + 4], split[((1 * heads + 3) * seq + 2) * d + 4]);

        var shape = new HeadShape(batch, seq, heads, d);
        using var xd = Buffer(x);
        using var hd = _acc.Allocate1D<float>(x.Length);
        using var md = _acc.Allocate1D<float>(x.Length);
        _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, HeadShape>(NnKernels.SplitHeads)(x.Length, xd.View, hd.View, shape);
        _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, HeadShape>(NnKernels.MergeHeads)(x.Length, hd.View, md.View, shape);
        Assert.Equal(split, hd.GetAsArray1D());
        Assert.Equal(x, md.GetAsArray1D());
    }

    [Fact]
    public void GatherRowsMatchesCpu()
    {
        float[] table = Values(6 * 4, 13);
        int[] rows = [5, 0, 0, 3];
        using var tt = _cpu.FromHost((float[])table.Clone(), 6, 4);
        using var ot = _cpu.Empty(rows.Length, 4);
        _cpu.GatherRows(tt, rows, ot);
        using var td = Buffer(table);
        using var rd = _acc.Allocate1D(rows);
        using var od = _acc.Allocate1D<float>(rows.Length * 4);
        _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(NnKernels.GatherRows)(rows.Length * 4, td.View, rd.View, od.View, 4);
        Assert.Equal(ot.ToArray(), od.GetAsArray1D());
        Assert.Throws<ArgumentOutOfRangeException>(() => _cpu.GatherRows(tt, [6], _cpu.Empty(1, 4)));
    }

    [Fact]
    public void PatchifyMatchesCpuAndTheConvolutionLayout()
    {
        const int batch = 2, ch = 3, size = 6, patch = 3;
        float[] img = Values(batch * ch * size * size, 14);
        using var it = _cpu.FromHost((float[])img.Clone(), batch, ch, size, size);
        int perImage = 1 + 4, len = ch * patch * patch;
        using var pt = _cpu.Empty(batch * perImage, len);
        _cpu.Patchify(it, patch, 1, pt);
        var p = pt.ToArray();
        Assert.All(p.AsSpan(perImage * len, len).ToArray(), v => Assert.Equal(0f, v));
        // image 1, patch (gy 1, gx 0) = row 1·5 + 1 + 2, column (ch 2, ky 1, kx 2).
        Assert.Equal(img[((1 * ch + 2) * size + 3 + 1) * size + 0 + 2], p[(1 * perImage + 3) * len + 2 * 9 + 1 * 3 + 2]);

        using var id = Buffer(img);
        using var pd = _acc.Allocate1D<float>(p.Length);
        _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PatchShape>(NnKernels.Patchify)(
            p.Length, id.View, pd.View, new PatchShape(batch, ch, size, size, patch, 1));
        Assert.Equal(p, pd.GetAsArray1D());
    }
}
