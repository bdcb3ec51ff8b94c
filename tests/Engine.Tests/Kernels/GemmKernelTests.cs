using TaskMerge.Engine.Tensors;
using Xunit;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Kernels;

[Collection(IlgpuCpuCollection.Name)]
public sealed class GemmKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IBackend _device = fixture.Device, _cpu = fixture.Cpu;

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void GemmMatchesCpuForEveryTransposeCombination(bool transA, bool transB)
    {
        AssertGemm(_device, _cpu, 5, 9, 7, transA, transB, 1f, 0f, 1e-6, 80);
        AssertGemm(_device, _cpu, 5, 9, 7, transA, transB, 0.5f, -2f, 1e-6, 81);
    }

    [Fact]
    public void GemmCoversManyTilesAndEmptyK()
    {
        // Bands of 2 tile rows per launch, as a GEMM taller than 65 535 tiles is split on CUDA.
        var diagnostics = fixture.Device.Diagnostics;
        int limit = diagnostics.GemmGridRows;
        diagnostics.GemmGridRows = 2;
        try
        {
            AssertGemm(_device, _cpu, 77, 30, 25, false, true, 1f, 1f, 1e-6, 86);
            AssertGemm(_device, _cpu, 77, 31, 9, true, false, 0.5f, 0f, 1e-6, 87);
        }
        finally
        {
            diagnostics.GemmGridRows = limit;
        }
        AssertGemm(_device, _cpu, 20, 30, 25, false, true, 1f, 1f, 1e-6, 82);
        AssertGemm(_device, _cpu, 3, 4, 0, false, false, 1f, 0.5f, 1e-6, 83);
    }

    [Theory]
    [InlineData(false, 0f)]
    [InlineData(true, 0f)]
    [InlineData(false, 1.5f)]
    [InlineData(true, 1.5f)]
    public void SyrkMatchesCpu(bool transA, float beta) => AssertSyrk(_device, _cpu, 6, 11, transA, 0.75f, beta, 1e-6, 84);

    [Theory]
    [InlineData(false, 0f)]
    [InlineData(true, 0f)]
    [InlineData(false, 0.5f)]
    [InlineData(true, 0.5f)]
    public void GemvMatchesCpu(bool transA, float beta) => AssertGemv(_device, _cpu, 7, 13, transA, 1.25f, beta, 1e-6, 85);

    [Fact]
    public void MismatchedShapesAreRejected()
    {
        using var a = _device.Empty(3, 4);
        using var c = _device.Empty(3, 3);
        using var x = _device.Empty(3);
        Assert.Throws<ArgumentException>(() => _device.Gemm(a, false, a, false, c));
        Assert.Throws<ArgumentException>(() => _device.Syrk(a, true, c));
        Assert.Throws<ArgumentException>(() => _device.Gemv(a, false, x, x));
    }
}
