using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tests.IO;
using TaskMerge.Engine.Tests.Models;

namespace TaskMerge.Engine.Tests.Cli;

/// <summary><c>taskmerge forward</c> on CLIP text towers, against the outputs recorded by make_clip_text_fixtures.py.</summary>
public sealed class ForwardTextCommandTests
{
    [Theory]
    [InlineData("hf_quick_gelu_legacy_eos", true)]
    [InlineData("open_clip_no_config", false)]
    public void ForwardWritesTheRecordedTextOutputs(string name, bool hasConfig)
    {
        string dir = Path.Combine(TestPaths.Data, "reference", "clip_text", name);
        using var tmp = new TempDir();
        string model = hasConfig ? dir : Path.Combine(dir, "model.safetensors");
        var (code, stdout, err) = CliRunner.Run("forward", model, Path.Combine(dir, "input.safetensors"), tmp["out.safetensors"], "--device", "cpu", "--batch-size", "3");
        Assert.True(code == 0, err);
        Assert.Contains("ClipText", stdout);
        using var got = ModelSource.Open(tmp["out.safetensors"]);
        using var want = ModelSource.Open(Path.Combine(dir, "expected.safetensors"));
        foreach (var t in new[] { "last_hidden_state", "pooler_output", "text_embeds" })
        {
            Assert.Equal(want.Get(t).Shape, got.Get(t).Shape);
            double rel = Float64Reference.RelErr(got.ReadFloat32(t), [.. want.ReadFloat32(t).Select(v => (double)v)]);
            Assert.InRange(rel, 0, 1e-4);
        }
    }

    [Fact]
    public void TextTowerGivenPixelValuesOrEvalIsBadInput()
    {
        string dir = Path.Combine(TestPaths.Data, "reference", "clip_text", "hf_quick_gelu_legacy_eos");
        using var tmp = new TempDir();
        TestTensors.WriteFile(tmp["pixels.safetensors"], TestTensors.F32("pixel_values", new float[3 * 16 * 16], 1, 3, 16, 16));
        var (code, _, err) = CliRunner.Run("forward", dir, tmp["pixels.safetensors"], tmp["out.safetensors"], "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("input_ids", err);
        Assert.False(File.Exists(tmp["out.safetensors"]));
    }
}
