using TaskMerge.Engine.Tensors;
using Xunit;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Kernels;

[Collection(IlgpuCpuCollection.Name)]
public sealed class ElementwiseKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device, _cpu = fixture.Cpu;

    [Theory]
    [InlineData(37)]
    [InlineData(1000)]
    public void AddSubMulDivMatchCpuBitForBit(int n)
    {
        float[] a = RandomValues(n, 1), b = RandomValues(n, 2);
        AssertBinary((be, t) => be.Add(t[0], t[1], t[2]), "add");
        AssertBinary((be, t) => be.Sub(t[0], t[1], t[2]), "sub");
        AssertBinary((be, t) => be.Mul(t[0], t[1], t[2]), "mul");
        AssertBinary((be, t) => be.Div(t[0], t[1], t[2]), "div");

        void AssertBinary(Action<IBackend, Tensor[]> op, string what)
        {
            var (expected, actual) = Run(_device, _cpu, [a, b, new float[n]], op, 2);
            AssertBitEqual(expected, actual, what);
        }
    }

    [Theory]
    [InlineData(37)]
    [InlineData(1000)]
    public void ScaleAxpyFillCopyMatchCpuBitForBit(int n)
    {
        float[] x = RandomValues(n, 3), y = RandomValues(n, 4);
        var (e, a) = Run(_device, _cpu, [x, y], (be, t) => be.Scale(t[0], -1.5f, t[1]), 1);
        AssertBitEqual(e, a, "scale");
        (e, a) = Run(_device, _cpu, [x, y], (be, t) => be.Axpy(0.3f, t[0], t[1]), 1);
        AssertBitEqual(e, a, "axpy");
        (e, a) = Run(_device, _cpu, [x], (be, t) => be.Fill(t[0], 3.25f), 0);
        AssertBitEqual(e, a, "fill");
        (e, a) = Run(_device, _cpu, [x, y], (be, t) => be.Copy(t[0], t[1]), 1);
        AssertBitEqual(e, a, "copy");
    }

    [Fact]
    public void ScaleInPlaceReadsBeforeWriting()
    {
        float[] x = RandomValues(300, 5);
        var (e, a) = Run(_device, _cpu, [x], (be, t) => be.Scale(t[0], 2f, t[0]), 0);
        AssertBitEqual(e, a, "in-place scale");
    }

    [Fact]
    public void ZerosUploadDownloadAndEmptyTensorsBehaveAsOnCpu()
    {
        using var z = _device.Zeros(4, 5);
        Assert.Equal([4, 5], z.Shape.ToArray());
        Assert.All(z.ToArray(), v => Assert.Equal(0f, v));

        float[] values = RandomValues(20, 6);
        _device.Upload(values, z);
        AssertBitEqual(values, z.ToArray(), "round trip");

        using var empty = _device.Empty(0);
        _device.Fill(empty, 1f);
        _device.Add(empty, empty, empty);
        Assert.Equal(0.0, _device.Sum(empty));
        Assert.Equal(0f, _device.MaxAbs(empty));
        Assert.Empty(empty.ToArray());
    }

    [Fact]
    public void MismatchedLengthsAndForeignTensorsAreRejected()
    {
        using var a = _device.Empty(10);
        using var b = _device.Empty(11);
        using var onCpu = _cpu.Empty(10);
        Assert.Throws<ArgumentException>(() => _device.Add(a, b, a));
        Assert.Throws<ArgumentException>(() => _device.Add(a, onCpu, a));
        Assert.Throws<ArgumentException>(() => _device.Upload(new float[11], a));
    }
}
