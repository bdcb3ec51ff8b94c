using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.IO;

namespace TaskMerge.Engine.Tests.Models;

/// <summary>The CLIP vision tower against the float64 reference on tiny random checkpoints.</summary>
public sealed class ClipVisionParityTests
{
    private const double Tolerance = 1e-4;

    private static void Within(float[] actual, double[] expected, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(actual))] string what = "")
    {
        double rel = Float64Reference.RelErr(actual, expected);
        TestContext.Current.TestOutputHelper?.WriteLine($"{what}: relative error {rel:E2}");
        Assert.InRange(rel, 0, Tolerance);
    }

    internal static float[] Pixels(int batch, TinyModels.ClipShape s, int seed) =>
        TinyModels.Random(new Random(seed), batch * s.Channels * s.Image * s.Image, 1.0);

    private static (float[] Last, float[] Pooled, float[]? Embeds) Run(string dir, float[] pixels, int batch, TinyModels.ClipShape s)
    {
        var be = new CpuBackend(2);
        using var src = ModelSource.Open(dir);
        using var model = ClipVisionModel.Load(src, be);
        using var x = be.FromHost((float[])pixels.Clone(), batch, s.Channels, s.Image, s.Image);
        using var o = model.Forward(x);
        return (o.LastHiddenState.ToArray(), o.PoolerOutput.ToArray(), o.ImageEmbeds?.ToArray());
    }

    [Theory]
    [InlineData("quick_gelu")]
    [InlineData("gelu")]
    public void HfLayoutMatchesFloat64Reference(string act)
    {
        var s = new TinyModels.ClipShape(Act: act);
        var w = TinyModels.ClipHf(s, seed: act.Length);
        using var dir = new TempDir();
        TinyModels.WriteClipDir(dir.Path, s, w);
        const int batch = 3;
        var pixels = Pixels(batch, s, 7);
        var (last, pooled, embeds) = Run(dir.Path, pixels, batch, s);
        var expected = Float64Reference.Clip(w, s, pixels, batch);
        Within(last, expected.LastHidden);
        Within(pooled, expected.Pooled);
        Within(embeds!, expected.Embeds!);
    }

    [Fact]
    public void ActivationComesFromConfigAndMatters()
    {
        var s = new TinyModels.ClipShape(Act: "gelu");
        var w = TinyModels.ClipHf(s, seed: 3);
        using var dir = new TempDir();
        TinyModels.WriteClipDir(dir.Path, s, w);
        var pixels = Pixels(2, s, 1);
        var (_, pooled, _) = Run(dir.Path, pixels, 2, s);
        var quick = Float64Reference.Clip(w, s with { Act = "quick_gelu" }, pixels, 2);
        var exact = Float64Reference.Clip(w, s, pixels, 2);
        Within(pooled, exact.Pooled);
        double diff = Float64Reference.RelErr(pooled, quick.Pooled);
        Assert.True(diff > 10 * Tolerance, $"gelu and quick_gelu should give different outputs (rel diff {diff})");
    }

    [Fact]
    public void NestedClipConfigWithOmittedFieldsUsesClassDefaults()
    {
        // model_type "clip": sizes under vision_config; hidden_act and layer_norm_eps omitted → quick_gelu, 1e-5.
        var s = new TinyModels.ClipShape();
        var w = TinyModels.ClipHf(s, seed: 11);
        using var dir = new TempDir();
        TinyModels.WriteClipDir(dir.Path, s, w, nestedConfig: true);
        var c = ClipVisionConfig.Load(dir["config.json"]);
        Assert.Equal(Activation.QuickGelu, c.HiddenAct);
        Assert.Equal(1e-5, c.LayerNormEps);
        Assert.Equal(s.Projection, c.ProjectionDim);
        var pixels = Pixels(2, s, 2);
        var (last, _, embeds) = Run(dir.Path, pixels, 2, s);
        var expected = Float64Reference.Clip(w, s, pixels, 2);
        Within(last, expected.LastHidden);
        Within(embeds!, expected.Embeds!);
    }

    [Fact]
    public void ConfigDefaultsMatchHfClassDefaults()
    {
        var c = ClipVisionConfig.From(ConfigJson.Parse("""{"model_type": "clip_vision_model"}"""));
        Assert.Equal((768, 3072, 12, 12, 224, 32, Activation.QuickGelu, 1e-5, 512, 50),
            (c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.ImageSize, c.PatchSize, c.HiddenAct, c.LayerNormEps, c.ProjectionDim, c.Tokens));
        // The published ViT-L/14 config omits hidden_act, layer_norm_eps and image_size.
        var l14 = ClipVisionConfig.From(ConfigJson.Parse("""
            {"model_type": "clip", "projection_dim": 768, "vision_config": {"hidden_size": 1024, "intermediate_size": 4096,
             "num_attention_heads": 16, "num_hidden_layers": 24, "patch_size": 14, "projection_dim": 768}}
            """));
        Assert.Equal((1024, 24, 16, 14, 257, 768, Activation.QuickGelu), (l14.HiddenSize, l14.NumHiddenLayers, l14.NumAttentionHeads, l14.PatchSize, l14.Tokens, l14.ProjectionDim, l14.HiddenAct));
        var b16 = ClipVisionConfig.From(ConfigJson.Parse("""{"model_type": "clip_vision_model", "patch_size": 16}"""));
        Assert.Equal(197, b16.Tokens);
    }

    [Fact]
    public void OpenClipNamesGiveTheSameModelAsHfNames()
    {
        var s = new TinyModels.ClipShape();
        var hf = TinyModels.ClipHf(s, seed: 5);
        using var hfDir = new TempDir();
        using var ocDir = new TempDir();
        TinyModels.WriteClipDir(hfDir.Path, s, hf);
        TinyModels.WriteClipDir(ocDir.Path, s, TinyModels.ToOpenClip(hf, s, "model.visual."));
        var pixels = Pixels(2, s, 3);
        var a = Run(hfDir.Path, pixels, 2, s);
        var b = Run(ocDir.Path, pixels, 2, s);
        Assert.Equal(a.Last, b.Last);
        Assert.Equal(a.Pooled, b.Pooled);
        Assert.Equal(a.Embeds, b.Embeds);
    }

    [Fact]
    public void OpenClipFileWithoutConfigIsInferredFromShapes()
    {
        // Width 64 → one head of 64; quick_gelu and eps 1e-5 as OpenAI CLIP.
        var s = new TinyModels.ClipShape(Hidden: 64, Layers: 1, Heads: 1, Intermediate: 128, Image: 16, Patch: 4, Projection: 8);
        var hf = TinyModels.ClipHf(s, seed: 9);
        using var dir = new TempDir();
        TinyModels.ToOpenClip(hf, s).WriteModel(dir.Path);
        var be = new CpuBackend(2);
        using var src = ModelSource.Open(dir["model.safetensors"]);
        using var model = ClipVisionModel.Load(src, be);
        Assert.Equal(ClipWeightLayout.OpenClip, model.Layout);
        Assert.Equal((64, 1, 1, 128, 16, 4, 8), (model.Config.HiddenSize, model.Config.NumHiddenLayers, model.Config.NumAttentionHeads,
            model.Config.IntermediateSize, model.Config.ImageSize, model.Config.PatchSize, model.FeatureDim));
        var pixels = Pixels(2, s, 4);
        using var x = be.FromHost(pixels, 2, 3, 16, 16);
        using var o = model.Forward(x);
        var expected = Float64Reference.Clip(hf, s, pixels, 2);
        Within(o.ImageEmbeds!.ToArray(), expected.Embeds!);
    }

    [Fact]
    public void VisionOnlyCheckpointHasNoImageEmbeds()
    {
        var s = new TinyModels.ClipShape();
        var w = TinyModels.ClipHf(s, seed: 6, withProjection: false);
        using var dir = new TempDir();
        TinyModels.WriteClipDir(dir.Path, s, w);
        var (_, pooled, embeds) = Run(dir.Path, Pixels(1, s, 1), 1, s);
        Assert.Null(embeds);
        Assert.Equal(s.Hidden, pooled.Length);
    }

    [Fact]
    public void ShapeMismatchBetweenConfigAndWeightsIsBadInput()
    {
        var s = new TinyModels.ClipShape();
        using var dir = new TempDir();
        TinyModels.WriteClipDir(dir.Path, s, TinyModels.ClipHf(s, seed: 1));
        File.WriteAllText(dir["config.json"], (s with { Intermediate = 48 }).ConfigJson());
        using var src = ModelSource.Open(dir.Path);
        var e = Assert.Throws<BadInputException>(() => ClipVisionModel.Load(src, new CpuBackend(1)));
        Assert.Contains("mlp.fc1.weight", e.Message);
    }

    [Fact]
    public void WrongPixelShapeIsBadInput()
    {
        var s = new TinyModels.ClipShape();
        using var dir = new TempDir();
        TinyModels.WriteClipDir(dir.Path, s, TinyModels.ClipHf(s, seed: 1));
        var be = new CpuBackend(1);
        using var src = ModelSource.Open(dir.Path);
        using var model = ClipVisionModel.Load(src, be);
        using var x = be.Zeros(1, 3, 24, 24);
        Assert.Throws<BadInputException>(() => model.Forward(x));
    }
}
