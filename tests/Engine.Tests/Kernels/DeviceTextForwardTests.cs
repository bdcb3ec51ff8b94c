using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tests.IO;
using static TaskMerge.Engine.Tests.Models.ClipTextTestModels;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>The whole CLIP text forward (causal score mask included) on the device backend (ILGPU's CPU simulator) against the CPU backend.</summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class DeviceTextForwardTests(IlgpuCpuFixture fixture)
{
    [Fact]
    public void Clip_text_forward_on_the_device_backend_matches_the_cpu_backend()
    {
        var s = new TextShape(Act: "gelu", EosTokenId: 39);
        using var dir = new TempDir();
        WriteDir(dir.Path, s, Hf(s, seed: 8));
        int[] ids = [38, 4, 17, 39, 0, 0, 38, 12, 7, 30, 9, 39];
        float[] RunOn(IBackend b)
        {
            using var src = ModelSource.Open(dir.Path);
            using var model = ClipTextModel.Load(src, b);
            using var o = model.Forward(ids, 2);
            return [.. o.LastHiddenState.ToArray(), .. o.TextEmbeds!.ToArray()];
        }
        var cpu = RunOn(fixture.Cpu);
        var dev = RunOn(fixture.Device);
        double scale = cpu.Max(Math.Abs);
        for (int i = 0; i < cpu.Length; i++) Assert.True(Math.Abs(cpu[i] - dev[i]) <= 1e-5 * scale, $"[{i}] cpu {cpu[i]} device {dev[i]}");
    }
}
