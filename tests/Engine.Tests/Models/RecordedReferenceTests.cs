using System.Runtime.InteropServices;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors.Cpu;

namespace TaskMerge.Engine.Tests.Models;

/// <summary>
/// The CLIP vision tower and RoBERTa against outputs recorded by PyTorch code that follows transformers'
/// and open_clip's module source (<c>data/reference/clip_vision/make_clip_vision_fixtures.py</c>,
/// <c>data/reference/roberta/make_roberta_fixtures.py</c>): checkpoints, inputs and expected outputs are
/// committed, so these tests do not depend on the engine's own float64 reference.
/// </summary>
public sealed class RecordedReferenceTests
{
    private const double Tolerance = 1e-4;

    private static void Within(float[] actual, float[] expected, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(actual))] string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        double rel = Float64Reference.RelErr(actual, [.. expected.Select(x => (double)x)]);
        TestContext.Current.TestOutputHelper?.WriteLine($"{what}: relative error {rel:E2}");
        Assert.InRange(rel, 0, Tolerance);
    }

    private static string CaseDir(string family, string name) => Path.Combine(TestPaths.Data, "reference", family, name);

    [Theory]
    [InlineData("hf_quick_gelu")]
    [InlineData("hf_gelu_odd_grid")]
    [InlineData("open_clip_no_config")]
    public void ClipVisionMatchesRecordedPyTorchOutputs(string name)
    {
        string dir = CaseDir("clip_vision", name);
        using var input = ModelSource.Open(Path.Combine(dir, "input.safetensors"));
        var shape = input.Get("pixel_values").Shape;
        using var expected = ModelSource.Open(Path.Combine(dir, "expected.safetensors"));
        string model = File.Exists(Path.Combine(dir, "config.json")) ? dir : Path.Combine(dir, "model.safetensors");
        var be = new CpuBackend(2);
        using var src = ModelSource.Open(model);
        using var m = ClipVisionModel.Load(src, be);
        using var x = be.FromHost(input.ReadFloat32("pixel_values"), [.. shape.Select(d => (int)d)]);
        using var o = m.Forward(x);
        Within(o.LastHiddenState.ToArray(), expected.ReadFloat32("last_hidden_state"));
        Within(o.PoolerOutput.ToArray(), expected.ReadFloat32("pooler_output"));
        Within(o.ImageEmbeds!.ToArray(), expected.ReadFloat32("image_embeds"));
    }

    [Theory]
    [InlineData("gelu_padded")]
    [InlineData("quick_gelu_three_layers")]
    public void RobertaMatchesRecordedPyTorchOutputs(string name)
    {
        string dir = CaseDir("roberta", name);
        using var input = ModelSource.Open(Path.Combine(dir, "input.safetensors"));
        var shape = input.Get("input_ids").Shape;
        int[] ids = [.. MemoryMarshal.Cast<byte, long>(input.GetBytes("input_ids")).ToArray().Select(v => (int)v)];
        int[] mask = [.. MemoryMarshal.Cast<byte, long>(input.GetBytes("attention_mask")).ToArray().Select(v => (int)v)];
        using var expected = ModelSource.Open(Path.Combine(dir, "expected.safetensors"));
        using var src = ModelSource.Open(dir);
        using var model = RobertaModel.Load(src, new CpuBackend(2));
        using var o = model.Forward(ids, (int)shape[0], (int)shape[1], mask);
        Within(o.LastHiddenState.ToArray(), expected.ReadFloat32("last_hidden_state"));
        Within(o.Logits!.ToArray(), expected.ReadFloat32("logits"));
    }
}
