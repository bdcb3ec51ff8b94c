using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tests.IO;
using TaskMerge.Engine.Tests.Models;
using static TaskMerge.Engine.Tests.Models.ClipTextTestModels;

namespace TaskMerge.Engine.Tests.Gpu;

/// <summary>
/// The CLIP text tower on a real GPU at ViT-B/32 text widths (512 wide, 8 heads, MLP 2048, 77
/// positions; 2 layers and a 1000-token vocabulary to stay small) against the CPU backend.
/// Skipped, with the reason, where there is no CUDA device.
/// </summary>
public sealed class CudaTextTowerTests(CudaFixture fixture, ITestOutputHelper output) : IClassFixture<CudaFixture>
{
    [Fact]
    public void TextTowerMatchesTheCpuBackendAtClipWidths()
    {
        var gpu = fixture.Require();
        var s = new TextShape(Vocab: 1000, Hidden: 512, Layers: 2, Heads: 8, Intermediate: 2048, Positions: 77, Projection: 512, Bos: 998, Eos: 999, EosTokenId: 999);
        using var dir = new TempDir();
        WriteDir(dir.Path, s, Hf(s, seed: 11));
        const int batch = 32;
        var rng = new Random(5);
        var ids = new int[batch * 77];
        for (int b = 0; b < batch; b++)
        {
            int len = 3 + rng.Next(74);
            ids[b * 77] = s.Bos;
            for (int t = 1; t < len - 1; t++) ids[b * 77 + t] = rng.Next(998);
            ids[b * 77 + len - 1] = s.Eos;
        }
        float[] RunOn(IBackend be)
        {
            using var src = ModelSource.Open(dir.Path);
            using var model = ClipTextModel.Load(src, be);
            using var o = model.Forward(ids, batch);
            return [.. o.LastHiddenState.ToArray(), .. o.TextEmbeds!.ToArray()];
        }
        var cpu = RunOn(fixture.Cpu);
        var dev = RunOn(gpu);
        double rel = Float64Reference.RelErr(dev, [.. cpu.Select(v => (double)v)]);
        output.WriteLine($"{gpu.Name}: text tower relative difference to the CPU backend {rel:E2}");
        Assert.InRange(rel, 0, 1e-4);
    }
}
