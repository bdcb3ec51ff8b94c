using System.Text.Json;
using TaskMerge.Engine.Eval;
using TaskMerge.Engine.Tests.Eval;
using TaskMerge.Engine.Tests.IO;
using TaskMerge.Engine.Tests.Models;

namespace TaskMerge.Engine.Tests.Cli;

/// <summary><c>taskmerge eval</c> end to end on tiny models: accuracies equal those of the float64 reference; bad data exits 2.</summary>
public sealed class EvalCommandTests
{
    private static readonly TinyModels.ClipShape Clip = new();

    private static int ArgMax(double[] v, int offset, int n)
    {
        int best = 0;
        for (int i = 1; i < n; i++) if (v[offset + i] > v[offset + best]) best = i;
        return best;
    }

    /// <summary>Predictions of the float64 reference for preprocessed pixels and a head [C, E] with scale s.</summary>
    private static int[] ReferencePredictions(Weights w, float[] pixels, int n, float[] head, int classes, double scale = 1)
    {
        var e = Float64Reference.Clip(w, Clip, pixels, n).Embeds!;
        int d = Clip.Projection;
        var pred = new int[n];
        for (int i = 0; i < n; i++)
        {
            double norm = Math.Sqrt(Enumerable.Range(0, d).Sum(k => e[i * d + k] * e[i * d + k]));
            var logits = new double[classes];
            for (int c = 0; c < classes; c++)
                logits[c] = scale * Enumerable.Range(0, d).Sum(k => e[i * d + k] / norm * head[c * d + k]);
            pred[i] = ArgMax(logits, 0, classes);
        }
        return pred;
    }

    private static void WriteHead(string path, float[] weight, int classes, int dim, float? logitScale = null)
    {
        var tensors = new List<(string, Engine.Tensors.DType, long[], byte[])> { TestTensors.F32("weight", weight, classes, dim), TestTensors.F32("bias", new float[classes], classes) };
        if (logitScale is float s) tensors.Add(TestTensors.F32("logit_scale", [s]));
        TestTensors.WriteFile(path, [.. tensors]);
    }

    /// <summary>Three class folders (cat, dog, frog) of two PNGs each, of different sizes and one grey.</summary>
    private static string ImageFolder(string root)
    {
        string[] classes = ["frog", "cat", "dog"];
        int seed = 0;
        foreach (var c in classes)
        {
            Directory.CreateDirectory(Path.Combine(root, c));
            TestImages.WritePng(Path.Combine(root, c, "a.png"), 16, 16, TestImages.RandomPixels(16 * 16 * 3, ++seed));
            if (c == "dog") TestImages.WritePng(Path.Combine(root, c, "b.png"), 20, 23, TestImages.RandomPixels(20 * 23, ++seed), grey: true);
            else TestImages.WritePng(Path.Combine(root, c, "b.png"), 27, 18, TestImages.RandomPixels(27 * 18 * 3, ++seed));
        }
        File.WriteAllText(Path.Combine(root, "cat", "notes.txt"), "ignored: not an image");
        return root;
    }

    [Fact]
    public void ImageFolderAndTensorFileTasksMatchTheReferenceAndWriteFusionBenchJson()
    {
        var w = TinyModels.ClipHf(Clip, seed: 41);
        using var dir = new TempDir();
        string model = TinyModels.WriteClipDir(dir["model"], Clip, w);
        string folder = ImageFolder(dir["images"]);

        // Folder order: cat (0), dog (1), frog (2); files a.png, b.png.
        var pre = new ImagePreprocessor(Clip.Image);
        var files = new[] { "cat", "dog", "frog" }.SelectMany(c => new[] { Path.Combine(folder, c, "a.png"), Path.Combine(folder, c, "b.png") }).ToArray();
        int[] folderLabels = [0, 0, 1, 1, 2, 2];
        var pixels = new float[files.Length * 3 * 16 * 16];
        for (int i = 0; i < files.Length; i++) pre.Process(ImagePreprocessor.Decode(files[i]), pixels.AsSpan(i * 768, 768));
        // Head rows: the reference embedding of each class's a.png, so those three are classified correctly.
        var emb = Float64Reference.Clip(w, Clip, pixels, files.Length).Embeds!;
        var head = new float[3 * 16];
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 16; k++) head[c * 16 + k] = (float)emb[(2 * c) * 16 + k];
        WriteHead(dir["head_img.safetensors"], head, 3, 16, logitScale: 100f);
        var folderPred = ReferencePredictions(w, pixels, files.Length, head, 3);
        double folderAcc = folderPred.Zip(folderLabels).Count(p => p.First == p.Second) / 6.0;
        Assert.True(folderAcc >= 0.5);

        var tensorPixels = ClipVisionParityTests.Pixels(5, Clip, 9);
        long[] tensorLabels = [0, 1, 3, 1, 0];
        TestTensors.WriteFile(dir["tensors.safetensors"], TestTensors.F32("pixel_values", tensorPixels, 5, 3, 16, 16), TestTensors.I64("labels", tensorLabels, 5));
        var randomHead = TinyModels.Random(new Random(3), 4 * 16, 1.0);
        WriteHead(dir["head_4.safetensors"], randomHead, 4, 16);
        var tensorPred = ReferencePredictions(w, tensorPixels, 5, randomHead, 4);
        double tensorAcc = tensorPred.Zip(tensorLabels).Count(p => p.First == p.Second) / 5.0;

        var (code, stdout, stderr) = CliRunner.Run("eval", model, "--task", $"imgs={folder},{dir["head_img.safetensors"]}",
            "--task", $"tensors={dir["tensors.safetensors"]},{dir["head_4.safetensors"]}", "--json", dir["out.json"], "--device", "cpu", "--batch-size", "4");
        Assert.True(code == 0, stderr);
        TestContext.Current.TestOutputHelper?.WriteLine(stdout);
        Assert.Contains("imgs", stdout);
        Assert.Contains("average", stdout);

        using var doc = JsonDocument.Parse(File.ReadAllText(dir["out.json"]));
        var root = doc.RootElement;
        Assert.Equal(folderAcc, root.GetProperty("imgs").GetProperty("accuracy").GetDouble(), 1e-12);
        Assert.Equal(6, root.GetProperty("imgs").GetProperty("n").GetInt32());
        Assert.Equal(tensorAcc, root.GetProperty("tensors").GetProperty("accuracy").GetDouble(), 1e-12);
        Assert.Equal((folderAcc + tensorAcc) / 2, root.GetProperty("average").GetProperty("accuracy").GetDouble(), 1e-12);
    }

    [Fact]
    public void TextTasksFromTsvAndJsonlUseTheirOwnHeadsAndGlueMetrics()
    {
        var s = new TinyModels.RobertaShape(Vocab: TinyVocab.Size, MaxPositions: 40, Labels: 2);
        var w = TinyModels.Roberta(s, seed: 51);
        using var dir = new TempDir();
        string model = TinyModels.WriteRobertaDir(dir["model"], s, w);
        TinyVocab.Write(model);
        var rteHead = TinyModels.Roberta(s, seed: 52);
        var stsHead = TinyModels.Roberta(s with { Labels = 1 }, seed: 53);
        Weights.Write(dir["rte_head"], rteHead.Names.Where(n => n.StartsWith("classifier.")).Select(n => (n, rteHead.ShapeOf(n), rteHead[n])));
        Weights.Write(dir["sts_head"], stsHead.Names.Where(n => n.StartsWith("classifier.")).Select(n => (n, stsHead.ShapeOf(n), stsHead[n])));

        (string A, string B, double Y)[] rte =
        [
            ("hello world", "the world", 0), ("it's hello", "hello the hello", 1), ("wor", "hello world hello world", 1),
            ("the the the", "x", 0), ("hello!", "world?", 1),
        ];
        File.WriteAllLines(dir["rte.tsv"], ["idx\tsentence1\tsentence2\tlabel", .. rte.Select((r, i) => $"{i}\t{r.A}\t{r.B}\t{(r.Y == 0 ? "entailment" : "not_entailment")}")]);
        (string A, string B, double Y)[] sts = [("hello", "hello", 5.0), ("world", "the", 0.4), ("hello the world", "the world", 3.1), ("x y", "z", 1.2)];
        File.WriteAllLines(dir["stsb.jsonl"], sts.Select(r => JsonSerializer.Serialize(new { sentence1 = r.A, sentence2 = r.B, label = r.Y })));

        var tok = RobertaTokenizer.Load(model);
        double[] Predict(Weights head, (string A, string B, double Y)[] data, bool regression) => data.Select(r =>
        {
            var ids = tok.Encode(r.A, r.B, 128);
            var merged = new Weights();
            foreach (var n in w.Names.Where(n => !n.StartsWith("classifier."))) merged.Add(n, w[n], w.ShapeOf(n));
            foreach (var n in head.Names.Where(n => n.StartsWith("classifier."))) merged.Add(n, head[n], head.ShapeOf(n));
            var logits = Float64Reference.Roberta(merged, s with { Labels = head.ShapeOf("classifier.out_proj.weight")[0] }, ids, null, 1, ids.Length).Logits;
            return regression ? logits[0] : ArgMax(logits, 0, logits.Length);
        }).ToArray();
        var (_, rteScore) = GlueMetrics.Compute("rte", Predict(rteHead, rte, false), rte.Select(r => r.Y).ToArray());
        var (stsValues, stsScore) = GlueMetrics.Compute("stsb", Predict(stsHead, sts, true), sts.Select(r => r.Y).ToArray());

        var (code, stdout, stderr) = CliRunner.Run("eval", model, "--task", $"rte={dir["rte.tsv"]},{dir["rte_head"]}",
            "--task", $"stsb={dir["stsb.jsonl"]},{dir["sts_head"]}", "--json", dir["glue.json"], "--batch-size", "2", "--device", "cpu");
        Assert.True(code == 0, stderr);
        TestContext.Current.TestOutputHelper?.WriteLine(stdout);
        Assert.Contains("pearson", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(dir["glue.json"]));
        var root = doc.RootElement;
        Assert.Equal(rteScore, root.GetProperty("rte").GetProperty("accuracy").GetDouble(), 1e-12);
        Assert.Equal(stsScore, root.GetProperty("stsb").GetProperty("score").GetDouble(), 1e-5);
        Assert.Equal(stsValues["spearmanr"], root.GetProperty("stsb").GetProperty("spearmanr").GetDouble(), 1e-5);
        Assert.Equal(rteScore, root.GetProperty("average").GetProperty("accuracy").GetDouble(), 1e-12);
        Assert.Equal((rteScore + stsScore) / 2, root.GetProperty("average").GetProperty("score").GetDouble(), 1e-5);
    }

    private static void AssertBad((int Exit, string Out, string Err) r, string mention)
    {
        Assert.True(r.Exit == 2, $"exit {r.Exit}: {r.Err}");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mention, lines[0]);
    }

    [Fact]
    public void BadDataExitsTwoWithOneClearLine()
    {
        var w = TinyModels.ClipHf(Clip, seed: 42);
        using var dir = new TempDir();
        string model = TinyModels.WriteClipDir(dir["model"], Clip, w);
        string folder = ImageFolder(dir["images"]);
        WriteHead(dir["head3.safetensors"], new float[3 * 16], 3, 16);
        WriteHead(dir["head2.safetensors"], new float[2 * 16], 2, 16);
        WriteHead(dir["head_wide.safetensors"], new float[3 * 32], 3, 32);
        TestTensors.WriteFile(dir["nohead.safetensors"], TestTensors.F32("classes", new float[3], 3));

        AssertBad(CliRunner.Run("eval", model, "--task", $"t={folder},{dir["missing.safetensors"]}"), "missing.safetensors");
        AssertBad(CliRunner.Run("eval", model, "--task", $"t={folder},{dir["head2.safetensors"]}"), "class-count mismatch");
        AssertBad(CliRunner.Run("eval", model, "--task", $"t={folder},{dir["head_wide.safetensors"]}"), "16 wide");
        AssertBad(CliRunner.Run("eval", model, "--task", $"t={folder},{dir["nohead.safetensors"]}"), "weight");
        AssertBad(CliRunner.Run("eval", model, "--task", $"t={folder}"), "needs a HEAD");
        AssertBad(CliRunner.Run("eval", model), "no --task");
        AssertBad(CliRunner.Run("eval", model, "--task", "nonsense"), "NAME=DATA,HEAD");

        TestTensors.WriteFile(dir["labels.safetensors"], TestTensors.F32("pixel_values", new float[2 * 768], 2, 3, 16, 16), TestTensors.I64("labels", [0, 7], 2));
        TestTensors.WriteFile(dir["negative.safetensors"], TestTensors.F32("pixel_values", new float[2 * 768], 2, 3, 16, 16), TestTensors.I64("labels", [-1, 0], 2));
        AssertBad(CliRunner.Run("eval", model, "--task", $"t={dir["negative.safetensors"]},{dir["head3.safetensors"]}"), "label -1");
        AssertBad(CliRunner.Run("eval", model, "--task", $"t={dir["labels.safetensors"]},{dir["head3.safetensors"]}"), "label 7");
        TestTensors.WriteFile(dir["size.safetensors"], TestTensors.F32("pixel_values", new float[2 * 3 * 64], 2, 3, 8, 8), TestTensors.I64("labels", [0, 1], 2));
        AssertBad(CliRunner.Run("eval", model, "--task", $"t={dir["size.safetensors"]},{dir["head3.safetensors"]}"), "[N, 3, 16, 16]");

        File.WriteAllText(dir["x.tsv"], "sentence\tlabel\nhi\t0\n");
        AssertBad(CliRunner.Run("eval", model, "--task", $"t={dir["x.tsv"]},{dir["head3.safetensors"]}"), "text data");

        File.WriteAllText(Path.Combine(folder, "cat", "broken.png"), "this is not a png");
        AssertBad(CliRunner.Run("eval", model, "--task", $"t={folder},{dir["head3.safetensors"]}", "--quiet"), "broken.png");
    }

    [Fact]
    public void TextDataProblemsAreBadInput()
    {
        var s = new TinyModels.RobertaShape(Vocab: TinyVocab.Size, MaxPositions: 40, Labels: 2);
        using var dir = new TempDir();
        string model = TinyModels.WriteRobertaDir(dir["model"], s, TinyModels.Roberta(s, seed: 1));
        File.WriteAllText(dir["a.tsv"], "sentence\tlabel\nhello\t0\n");
        AssertBad(CliRunner.Run("eval", model, "--task", $"sst2={dir["a.tsv"]}"), "vocab.json");
        TinyVocab.Write(model);
        File.WriteAllText(dir["b.tsv"], "sentence\tlabel\nhello\t5\n");
        AssertBad(CliRunner.Run("eval", model, "--task", $"sst2={dir["b.tsv"]}"), "class-count mismatch");
        File.WriteAllText(dir["c.tsv"], "sentence\tlabel\nhello\t-1\n");
        AssertBad(CliRunner.Run("eval", model, "--task", $"sst2={dir["c.tsv"]}"), "-1");
        File.WriteAllText(dir["d.tsv"], "words\tlabel\nhello\t1\n");
        AssertBad(CliRunner.Run("eval", model, "--task", $"sst2={dir["d.tsv"]}"), "no text columns");
        File.WriteAllText(dir["ok.tsv"], "sentence\tlabel\nhello\t1\n");
        var (code, _, err) = CliRunner.Run("eval", model, "--task", $"sst2={dir["ok.tsv"]}", "--quiet");
        Assert.True(code == 0, err);
    }
}
