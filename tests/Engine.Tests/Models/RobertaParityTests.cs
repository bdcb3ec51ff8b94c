using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.IO;

namespace TaskMerge.Engine.Tests.Models;

/// <summary>RoBERTa sequence classification against the float64 reference on tiny random checkpoints.</summary>
public sealed class RobertaParityTests
{
    private const double Tolerance = 1e-4;

    private static void Within(float[] actual, double[] expected, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(actual))] string what = "")
    {
        double rel = Float64Reference.RelErr(actual, expected);
        TestContext.Current.TestOutputHelper?.WriteLine($"{what}: relative error {rel:E2}");
        Assert.InRange(rel, 0, Tolerance);
    }

    /// <summary>Three rows of 7: full, 2 pads, 4 pads (pad id 1, mask 0), all starting with &lt;s&gt; = 0.</summary>
    internal static (int[] Ids, int[] Mask) PaddedBatch()
    {
        int[] ids =
        [
            0, 5, 17, 33, 9, 41, 2,
            0, 12, 7, 58, 2, 1, 1,
            0, 44, 2, 1, 1, 1, 1,
        ];
        var mask = ids.Select(i => i == 1 ? 0 : 1).ToArray();
        return (ids, mask);
    }

    [Theory]
    [InlineData("gelu")]
    [InlineData("quick_gelu")]
    public void PaddedBatchMatchesFloat64Reference(string act)
    {
        var s = new TinyModels.RobertaShape(Act: act);
        var w = TinyModels.Roberta(s, seed: 21);
        using var dir = new TempDir();
        TinyModels.WriteRobertaDir(dir.Path, s, w);
        var (ids, mask) = PaddedBatch();
        using var src = ModelSource.Open(dir.Path);
        using var model = RobertaModel.Load(src, new CpuBackend(2));
        Assert.Equal(3, model.NumLabels);
        using var o = model.Forward(ids, 3, 7, mask);
        var expected = Float64Reference.Roberta(w, s, ids, mask, 3, 7);
        Within(o.LastHiddenState.ToArray(), expected.LastHidden);
        Within(o.Logits!.ToArray(), expected.Logits);
    }

    [Fact]
    public void PaddingDoesNotChangeTheRealTokens()
    {
        var s = new TinyModels.RobertaShape();
        var w = TinyModels.Roberta(s, seed: 4);
        using var dir = new TempDir();
        TinyModels.WriteRobertaDir(dir.Path, s, w);
        using var src = ModelSource.Open(dir.Path);
        using var model = RobertaModel.Load(src, new CpuBackend(1));
        var (ids, mask) = PaddedBatch();
        using var padded = model.Forward(ids, 3, 7, mask);
        using var alone = model.Forward(ids.AsSpan(14, 3), 1, 3);
        float[] a = padded.Logits!.ToArray()[6..9], b = alone.Logits!.ToArray();
        for (int i = 0; i < 3; i++) Assert.Equal(b[i], a[i], 1e-5f);
    }

    [Fact]
    public void PositionIdsSkipPadsAndStartAfterPaddingIndex()
    {
        Assert.Equal([2, 3, 4, 1, 1], RobertaModel.PositionIds([0, 7, 2, 1, 1], 1, 5, 1));
        Assert.Equal([2, 1, 3], RobertaModel.PositionIds([0, 1, 2], 1, 3, 1));
    }

    [Fact]
    public void SeparateHeadFileReplacesTheClassifier()
    {
        var s = new TinyModels.RobertaShape();
        var w = TinyModels.Roberta(s, seed: 8);
        var other = TinyModels.Roberta(s with { Labels = 2 }, seed: 9);
        using var dir = new TempDir();
        using var headDir = new TempDir();
        TinyModels.WriteRobertaDir(dir.Path, s, w);
        Weights.Write(headDir.Path, other.Names.Where(n => n.StartsWith("classifier.")).Select(n => (n, other.ShapeOf(n), other[n])));
        using var src = ModelSource.Open(dir.Path);
        using var head = ModelSource.Open(headDir.Path);
        using var model = RobertaModel.Load(src, new CpuBackend(1), head: head);
        Assert.Equal(2, model.NumLabels);
    }

    [Fact]
    public void ConfigDefaultsAreBertsButConfigValuesWin()
    {
        var d = RobertaConfig.From(ConfigJson.Parse("""{"model_type": "roberta"}"""));
        Assert.Equal((1e-12, 512, 2, 30522, 1), (d.LayerNormEps, d.MaxPositionEmbeddings, d.TypeVocabSize, d.VocabSize, d.PadTokenId));
        var c = RobertaConfig.From(ConfigJson.Parse("""{"model_type": "roberta", "layer_norm_eps": 1e-05, "max_position_embeddings": 514, "num_labels": 3}"""));
        Assert.Equal((1e-5, 514, 3), (c.LayerNormEps, c.MaxPositionEmbeddings, c.NumLabels));
        Assert.Throws<BadInputException>(() => RobertaConfig.From(ConfigJson.Parse("""{"hidden_act": "swish"}""")));
    }

    [Fact]
    public void OutOfVocabularyIdsAndOverlongSequencesAreBadInput()
    {
        var s = new TinyModels.RobertaShape();
        using var dir = new TempDir();
        TinyModels.WriteRobertaDir(dir.Path, s, TinyModels.Roberta(s, seed: 2));
        using var src = ModelSource.Open(dir.Path);
        using var model = RobertaModel.Load(src, new CpuBackend(1));
        Assert.Throws<BadInputException>(() => model.Forward([0, 60, 2], 1, 3));
        var tooLong = Enumerable.Repeat(5, 19).ToArray();
        Assert.Throws<BadInputException>(() => model.Forward(tooLong, 1, 19));
    }
}
