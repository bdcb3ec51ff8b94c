using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.IO;
using TaskMerge.Engine.Tests.Models;

namespace TaskMerge.Engine.Tests.Cli;

/// <summary><c>taskmerge forward</c> end to end: outputs equal the engine call; bad inputs exit 2 with one line.</summary>
public sealed class ForwardCommandTests
{
    private static float[] Read(string file, string name, params long[] shape)
    {
        using var f = SafetensorsFile.Open(file);
        Assert.True(f.TryGet(name, out var t), $"{name} missing from output");
        Assert.Equal(shape, t.Shape);
        return f.ReadFloat32(t);
    }

    [Fact]
    public void ClipForwardWritesHfOutputsEqualToTheEngineCall()
    {
        var s = new TinyModels.ClipShape();
        var w = TinyModels.ClipHf(s, seed: 31);
        using var dir = new TempDir();
        string model = TinyModels.WriteClipDir(dir["model"], s, w);
        var pixels = ClipVisionParityTests.Pixels(5, s, 2);
        TestTensors.WriteFile(dir["in.safetensors"], TestTensors.F32("pixel_values", pixels, 5, 3, 16, 16));

        var (code, stdout, stderr) = CliRunner.Run("forward", model, dir["in.safetensors"], dir["out.safetensors"], "--device", "cpu", "--batch-size", "5");
        Assert.True(code == 0, stderr);
        Assert.Contains("ClipVision: 5 examples", stdout);
        Assert.Equal(0, CliRunner.Run("forward", model, dir["in.safetensors"], dir["batched.safetensors"], "--device", "cpu", "--batch-size", "2").Exit);
        // Batches of 2 change GEMM shapes (and so the float32 summation blocking), never more than rounding.
        Assert.InRange(RelDiff(Read(dir["batched.safetensors"], "last_hidden_state", 5, 5, 32), Read(dir["out.safetensors"], "last_hidden_state", 5, 5, 32)), 0, 1e-6);

        var be = new CpuBackend(2);
        using var src = ModelSource.Open(model);
        using var m = ClipVisionModel.Load(src, be);
        using var x = be.FromHost((float[])pixels.Clone(), 5, 3, 16, 16);
        using var o = m.Forward(x);
        Assert.Equal(o.LastHiddenState.ToArray(), Read(dir["out.safetensors"], "last_hidden_state", 5, 5, 32));
        Assert.Equal(o.PoolerOutput.ToArray(), Read(dir["out.safetensors"], "pooler_output", 5, 32));
        Assert.Equal(o.ImageEmbeds!.ToArray(), Read(dir["out.safetensors"], "image_embeds", 5, 16));
        var expected = Float64Reference.Clip(w, s, pixels, 5);
        Assert.InRange(Float64Reference.RelErr(Read(dir["out.safetensors"], "image_embeds", 5, 16), expected.Embeds!), 0, 1e-4);
    }

    [Fact]
    public void RobertaForwardWithPaddingMaskWritesLastHiddenStateAndLogits()
    {
        var s = new TinyModels.RobertaShape();
        var w = TinyModels.Roberta(s, seed: 32);
        using var dir = new TempDir();
        string model = TinyModels.WriteRobertaDir(dir["model"], s, w);
        var (ids, mask) = RobertaParityTests.PaddedBatch();
        TestTensors.WriteFile(dir["in.safetensors"],
            TestTensors.I64("input_ids", ids.Select(i => (long)i).ToArray(), 3, 7),
            TestTensors.I64("attention_mask", mask.Select(i => (long)i).ToArray(), 3, 7));

        var (code, _, stderr) = CliRunner.Run("forward", model, dir["in.safetensors"], dir["out.safetensors"], "--device", "cpu", "--batch-size", "3", "--quiet");
        Assert.True(code == 0, stderr);
        Assert.Equal(0, CliRunner.Run("forward", model, dir["in.safetensors"], dir["batched.safetensors"], "--device", "cpu", "--batch-size", "2", "--quiet").Exit);
        Assert.InRange(RelDiff(Read(dir["batched.safetensors"], "logits", 3, 3), Read(dir["out.safetensors"], "logits", 3, 3)), 0, 1e-6);
        var expected = Float64Reference.Roberta(w, s, ids, mask, 3, 7);
        Assert.InRange(Float64Reference.RelErr(Read(dir["out.safetensors"], "last_hidden_state", 3, 7, 32), expected.LastHidden), 0, 1e-4);
        Assert.InRange(Float64Reference.RelErr(Read(dir["out.safetensors"], "logits", 3, 3), expected.Logits), 0, 1e-4);

        using var src = ModelSource.Open(model);
        using var m = RobertaModel.Load(src, new CpuBackend(1));
        using var o = m.Forward(ids, 3, 7, mask);
        Assert.Equal(o.Logits!.ToArray(), Read(dir["out.safetensors"], "logits", 3, 3));
    }

    private static double RelDiff(float[] a, float[] b) =>
        a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max() / Math.Max(1e-30, b.Max(v => Math.Abs((double)v)));

    private static void AssertBad((int Exit, string Out, string Err) r, string mention, string outFile)
    {
        Assert.True(r.Exit == 2, $"exit {r.Exit}: {r.Err}");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mention, lines[0]);
        Assert.False(File.Exists(outFile));
    }

    [Fact]
    public void BadInputsExitTwoWithOneLineAndNoOutputFile()
    {
        var cs = new TinyModels.ClipShape();
        var rs = new TinyModels.RobertaShape();
        using var dir = new TempDir();
        string clip = TinyModels.WriteClipDir(dir["clip"], cs, TinyModels.ClipHf(cs, 1));
        string roberta = TinyModels.WriteRobertaDir(dir["roberta"], rs, TinyModels.Roberta(rs, 1));
        string output = dir["out.safetensors"];

        TestTensors.WriteFile(dir["wrong_name.safetensors"], TestTensors.F32("pixels", new float[3 * 16 * 16], 1, 3, 16, 16));
        AssertBad(CliRunner.Run("forward", clip, dir["wrong_name.safetensors"], output), "pixel_values", output);

        TestTensors.WriteFile(dir["wrong_size.safetensors"], TestTensors.F32("pixel_values", new float[3 * 8 * 8], 1, 3, 8, 8));
        AssertBad(CliRunner.Run("forward", clip, dir["wrong_size.safetensors"], output), "[B, 3, 16, 16]", output);

        AssertBad(CliRunner.Run("forward", clip, dir["missing.safetensors"], output), "missing.safetensors", output);
        AssertBad(CliRunner.Run("forward", dir["nowhere"], dir["wrong_size.safetensors"], output), "nowhere", output);

        TestTensors.WriteFile(dir["ids.safetensors"],
            TestTensors.I64("input_ids", [0, 5, 2], 1, 3), TestTensors.I64("attention_mask", [1, 1], 1, 2));
        AssertBad(CliRunner.Run("forward", roberta, dir["ids.safetensors"], output), "attention_mask", output);

        TestTensors.WriteFile(dir["oov.safetensors"], TestTensors.I64("input_ids", [0, 500, 2], 1, 3));
        AssertBad(CliRunner.Run("forward", roberta, dir["oov.safetensors"], output), "500", output);

        TestTensors.WriteFile(dir["float_ids.safetensors"], TestTensors.F32("input_ids", [0, 5, 2], 1, 3));
        AssertBad(CliRunner.Run("forward", roberta, dir["float_ids.safetensors"], output), "integer", output);

        File.WriteAllText(Path.Combine(roberta, "config.json"), """{"model_type": "gpt2"}""");
        AssertBad(CliRunner.Run("forward", roberta, dir["oov.safetensors"], output), "gpt2", output);

        AssertBad(CliRunner.Run("forward", clip, dir["wrong_size.safetensors"], output, "--batch-size", "0"), "--batch-size", output);
    }
}
