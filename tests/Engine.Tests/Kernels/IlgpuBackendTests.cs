using TaskMerge.Engine.Tensors.Ilgpu;
using Xunit;

namespace TaskMerge.Engine.Tests.Kernels;

[Collection(IlgpuCpuCollection.Name)]
public sealed class IlgpuBackendTests(IlgpuCpuFixture fixture)
{
    private readonly IlgpuBackend _device = fixture.Device;

    [Fact]
    public void ReleasedBuffersAreReusedForTheSameSizeClass()
    {
        _device.TrimPool();
        var first = _device.Empty(1000, 3);
        first.Dispose();
        long cached = _device.CachedBytes;
        Assert.True(cached >= 3000 * sizeof(float));
        using var second = _device.Empty(3001);
        Assert.Equal(0, _device.CachedBytes);
    }

    [Theory]
    [InlineData(1, 1024)]
    [InlineData(1024, 1024)]
    [InlineData(1025, 1152)]
    [InlineData(4096, 4096)]
    [InlineData(4097, 4608)]
    [InlineData(1_000_000, 1_048_576)]
    public void SizeClassesRoundUpByAtMostAnEighth(long length, long capacity) => Assert.Equal(capacity, DevicePool.Capacity(length));

    [Fact]
    public void NameSaysWhichAcceleratorRunsTheKernels()
    {
        Assert.StartsWith("ilgpu-cpu", _device.Name);
        Assert.Equal("ILGPU tiled kernels", _device.MatrixEngine);
    }

    [Fact]
    public void DisposedTensorsCannotBeUsed()
    {
        var t = _device.Zeros(4);
        t.Dispose();
        Assert.True(t.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => _device.Fill(t, 1f));
    }
}
