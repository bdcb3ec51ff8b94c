using System.Runtime.InteropServices;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.IO;
using static TaskMerge.Engine.Tests.Models.ClipTextTestModels;

namespace TaskMerge.Engine.Tests.Models;

/// <summary>
/// The CLIP text tower against an independent float64 forward on tiny random checkpoints, and against
/// outputs recorded by <c>data/reference/clip_text/make_clip_text_fixtures.py</c> (PyTorch, transformers'
/// modeling_clip.py and open_clip's text transformer statement by statement).
/// </summary>
public sealed class ClipTextParityTests
{
    private const double Tolerance = 1e-4;

    // BOS 38, EOS 39 (the largest id); padded with EOS, padded with 0, full length.
    private static readonly int[] Ids =
    [
        38, 4, 17, 33, 39, 39, 39, 39,
        38, 12, 7, 30, 9, 39, 0, 0,
        38, 3, 4, 5, 6, 7, 8, 39,
    ];

    private static void Within(float[] actual, double[] expected, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(actual))] string what = "")
    {
        double rel = Float64Reference.RelErr(actual, expected);
        TestContext.Current.TestOutputHelper?.WriteLine($"{what}: relative error {rel:E2}");
        Assert.InRange(rel, 0, Tolerance);
    }

    private static (float[] Last, float[] Pooled, float[]? Embeds, ClipTextModel Model) Run(string path, int[] ids, int batch)
    {
        var be = new CpuBackend(2);
        using var src = ModelSource.Open(path);
        var model = ClipTextModel.Load(src, be);
        using var o = model.Forward(ids, batch);
        return (o.LastHiddenState.ToArray(), o.PoolerOutput.ToArray(), o.TextEmbeds?.ToArray(), model);
    }

    [Theory]
    [InlineData("quick_gelu", 2)]
    [InlineData("gelu", 39)]
    public void HfLayoutMatchesFloat64Reference(string act, int eosTokenId)
    {
        var s = new TextShape(Act: act, EosTokenId: eosTokenId);
        var w = Hf(s, seed: act.Length);
        using var dir = new TempDir();
        WriteDir(dir.Path, s, w);
        var (last, pooled, embeds, model) = Run(dir.Path, Ids, 3);
        using (model)
        {
            Assert.Equal(ClipWeightLayout.HuggingFace, model.Layout);
            Assert.Equal(2.5, model.LogitScale);
        }
        var expected = Forward(w, s, Ids, 3);
        Within(last, expected.Last);
        Within(pooled, expected.Pooled);
        Within(embeds!, expected.Embeds);
    }

    [Fact]
    public void NestedClipModelConfigReadsTextConfigAndTopLevelProjection()
    {
        var s = new TextShape(Projection: 12);
        var w = Hf(s, seed: 4);
        using var dir = new TempDir();
        WriteDir(dir.Path, s, w, nested: true);
        var c = ClipTextConfig.Load(dir["config.json"]);
        Assert.Equal((40, 32, 2, 4, 10, 12, 2), (c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.MaxPositionEmbeddings, c.ProjectionDim, c.EosTokenId));
        var (_, _, embeds, model) = Run(dir.Path, Ids, 3);
        model.Dispose();
        Within(embeds!, Forward(w, s, Ids, 3).Embeds);
    }

    [Fact]
    public void ConfigDefaultsMatchHfClassDefaults()
    {
        var c = ClipTextConfig.From(ConfigJson.Parse("""{"model_type": "clip_text_model"}"""));
        Assert.Equal((49408, 512, 2048, 12, 8, 77, Activation.QuickGelu, 1e-5, 512, 49406, 49407),
            (c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.MaxPositionEmbeddings, c.HiddenAct, c.LayerNormEps, c.ProjectionDim, c.BosTokenId, c.EosTokenId));
        // openai/clip-vit-base-patch32's config.json: text_config with the pre-#24773 eos_token_id 2.
        var openai = ClipTextConfig.From(ConfigJson.Parse("""
            {"model_type": "clip", "projection_dim": 512, "text_config": {"bos_token_id": 0, "eos_token_id": 2, "hidden_size": 512,
             "intermediate_size": 2048, "num_attention_heads": 8, "num_hidden_layers": 12, "projection_dim": 512}, "vision_config": {}}
            """));
        Assert.Equal(ClipTextConfig.LegacyEosTokenId, openai.EosTokenId);
    }

    [Fact]
    public void PoolingFollowsTransformersRules()
    {
        // Legacy eos_token_id 2: first position of the largest id.
        Assert.Equal(3, ClipTextModel.PoolPosition([5, 1, 7, 9, 9, 0], 2));
        // New rule: first position of eos_token_id, even when a larger id (an added token) comes first.
        Assert.Equal(4, ClipTextModel.PoolPosition([5, 50, 7, 3, 9, 9], 9));
        Assert.Equal(1, ClipTextModel.PoolPosition([5, 50, 7, 3, 9, 9], 50));
        // No eos_token_id present: argmax of an all-false mask is 0.
        Assert.Equal(0, ClipTextModel.PoolPosition([5, 6, 7], 9));
    }

    [Fact]
    public void OpenClipNamesWithoutConfigAreInferredAndMatchHfNames()
    {
        // Width 64 → one head of 64, argmax pooling as open_clip; the same weights under HF names with a config.
        var s = new TextShape(Hidden: 64, Heads: 1, Intermediate: 128);
        var hf = Hf(s, seed: 9);
        using var hfDir = new TempDir();
        using var ocDir = new TempDir();
        WriteDir(hfDir.Path, s, hf);
        ToOpenClip(hf, s).WriteModel(ocDir.Path);
        var a = Run(hfDir.Path, Ids, 3);
        var b = Run(ocDir["model.safetensors"], Ids, 3);
        using (b.Model)
        {
            Assert.Equal(ClipWeightLayout.OpenClip, b.Model.Layout);
            Assert.Equal((40, 64, 2, 1, 128, 10, 16), (b.Model.Config.VocabSize, b.Model.Config.HiddenSize, b.Model.Config.NumHiddenLayers,
                b.Model.Config.NumAttentionHeads, b.Model.Config.IntermediateSize, b.Model.Config.MaxPositionEmbeddings, b.Model.FeatureDim));
            Assert.Equal(2.5, b.Model.LogitScale);
        }
        a.Model.Dispose();
        Assert.Equal(a.Last, b.Last);
        Assert.Equal(a.Pooled, b.Pooled);
        Assert.Equal(a.Embeds, b.Embeds);
    }

    [Fact]
    public void TextTowerIsFoundBesideAVisionTowerInOneCheckpoint()
    {
        var s = new TextShape();
        var text = Hf(s, seed: 6);
        var vs = new TinyModels.ClipShape();
        var vision = TinyModels.ClipHf(vs, seed: 7);
        var both = new Weights();
        foreach (var n in vision.Names) both.Add(n, vision[n], vision.ShapeOf(n));
        foreach (var n in text.Names) both.Add(n, text[n], text.ShapeOf(n));
        using var dir = new TempDir();
        WriteDir(dir.Path, s, both, nested: true);
        var (_, pooled, _, model) = Run(dir.Path, Ids, 3);
        model.Dispose();
        Within(pooled, Forward(text, s, Ids, 3).Pooled);
    }

    [Fact]
    public void ShorterSequencesUseTheFirstPositions()
    {
        var s = new TextShape();
        var w = Hf(s, seed: 3);
        using var dir = new TempDir();
        WriteDir(dir.Path, s, w);
        int[] ids = [38, 5, 39, 38, 39, 0];
        var (last, _, _, model) = Run(dir.Path, ids, 2);
        model.Dispose();
        Within(last, Forward(w, s, ids, 2).Last);
    }

    [Fact]
    public void BadInputsAreRejectedWithTheReason()
    {
        var s = new TextShape();
        using var dir = new TempDir();
        WriteDir(dir.Path, s, Hf(s, seed: 1));
        using var src = ModelSource.Open(dir.Path);
        using var model = ClipTextModel.Load(src, new CpuBackend(1));
        Assert.Contains("outside the vocabulary", Assert.Throws<BadInputException>(() => model.Forward([38, 40, 39], 1)).Message);
        Assert.Contains("max_position_embeddings", Assert.Throws<BadInputException>(() => model.Forward(new int[11], 1)).Message);
        Assert.Contains("not a [B, T] batch", Assert.Throws<BadInputException>(() => model.Forward(new int[5], 2)).Message);

        File.WriteAllText(dir["config.json"], (s with { Layers = 1 }).ConfigJson());
        using var deeper = ModelSource.Open(dir.Path);
        Assert.Contains("more than num_hidden_layers", Assert.Throws<BadInputException>(() => ClipTextModel.Load(deeper, new CpuBackend(1))).Message);

        File.WriteAllText(dir["config.json"], (s with { Intermediate = 48 }).ConfigJson());
        using var mismatched = ModelSource.Open(dir.Path);
        Assert.Contains("mlp.fc1.weight", Assert.Throws<BadInputException>(() => ClipTextModel.Load(mismatched, new CpuBackend(1))).Message);

        using var vdir = new TempDir();
        TinyModels.WriteClipDir(vdir.Path, new TinyModels.ClipShape(), TinyModels.ClipHf(new TinyModels.ClipShape(), seed: 2));
        using var visionOnly = ModelSource.Open(vdir.Path);
        Assert.Contains("not a CLIP text checkpoint", Assert.Throws<BadInputException>(() => ClipTextModel.Load(visionOnly, new CpuBackend(1))).Message);
    }

    [Theory]
    [InlineData("hf_quick_gelu_legacy_eos")]
    [InlineData("hf_gelu_eos_token_id")]
    [InlineData("open_clip_no_config")]
    public void MatchesRecordedPyTorchOutputs(string name)
    {
        string dir = Path.Combine(TestPaths.Data, "reference", "clip_text", name);
        using var input = ModelSource.Open(Path.Combine(dir, "input.safetensors"));
        var shape = input.Get("input_ids").Shape;
        int[] ids = [.. MemoryMarshal.Cast<byte, long>(input.GetBytes("input_ids")).ToArray().Select(v => (int)v)];
        using var expected = ModelSource.Open(Path.Combine(dir, "expected.safetensors"));
        string model = File.Exists(Path.Combine(dir, "config.json")) ? dir : Path.Combine(dir, "model.safetensors");
        var (last, pooled, embeds, m) = Run(model, ids, (int)shape[0]);
        m.Dispose();
        Within(last, Widen(expected.ReadFloat32("last_hidden_state")));
        Within(pooled, Widen(expected.ReadFloat32("pooler_output")));
        Within(pooled, Widen(expected.ReadFloat32("pooler_output_masked")));
        Within(embeds!, Widen(expected.ReadFloat32("text_embeds")));
    }

    private static double[] Widen(float[] v) => [.. v.Select(x => (double)x)];
}
