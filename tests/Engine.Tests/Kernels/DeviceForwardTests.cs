using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tests.IO;
using TaskMerge.Engine.Tests.Models;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>The whole CLIP vision forward on the device backend (ILGPU's CPU simulator) against the CPU backend.</summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class DeviceForwardTests(IlgpuCpuFixture fixture)
{
    [Theory]
    [InlineData("quick_gelu")]
    [InlineData("gelu")]
    public void Clip_vision_forward_on_the_device_backend_matches_the_cpu_backend(string act)
    {
        var s = new TinyModels.ClipShape(Act: act);
        var w = TinyModels.ClipHf(s, seed: 5);
        using var dir = new TempDir();
        TinyModels.WriteClipDir(dir.Path, s, w);
        var pixels = ClipVisionParityTests.Pixels(2, s, 3);
        float[] RunOn(IBackend b)
        {
            using var src = ModelSource.Open(dir.Path);
            using var model = ClipVisionModel.Load(src, b);
            using var x = b.FromHost((float[])pixels.Clone(), 2, s.Channels, s.Image, s.Image);
            using var o = model.Forward(x);
            return o.LastHiddenState.ToArray().Concat(o.ImageEmbeds!.ToArray()).ToArray();
        }
        var cpu = RunOn(fixture.Cpu);
        var dev = RunOn(fixture.Device);
        double scale = cpu.Max(Math.Abs);
        for (int i = 0; i < cpu.Length; i++) Assert.True(Math.Abs(cpu[i] - dev[i]) <= 1e-5 * scale, $"[{i}] cpu {cpu[i]} device {dev[i]}");
    }
}
