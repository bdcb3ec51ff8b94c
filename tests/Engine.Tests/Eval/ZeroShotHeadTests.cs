using TaskMerge.Engine.Eval;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.Cli;
using TaskMerge.Engine.Tests.IO;
using TaskMerge.Engine.Tests.Models;
using static TaskMerge.Engine.Tests.Models.ClipTextTestModels;

namespace TaskMerge.Engine.Tests.Eval;

/// <summary>Zero-shot heads from the CLIP text tower against a float64 recomputation of the FusionBench / task-vectors recipe.</summary>
public sealed class ZeroShotHeadTests
{
    private static string TokenizerDir => Path.Combine(TestPaths.Data, "reference", "clip_tokenizer");

    // The fixture vocabulary has 914 tokens: <|startoftext|> 912, <|endoftext|> 913 (the largest id).
    private static readonly TextShape Shape = new(Vocab: 914, Positions: 77, Bos: 912, Eos: 913, EosTokenId: 913);

    private static readonly ZeroShotTask Custom = new("custom", ["dog", "cat", "annual crop land"],
        ["a photo of a {}.", "a bad photo of the {}.", "a centered satellite photo of {}."]);

    private static string WriteModel(TempDir dir, int seed, TextShape? shape = null)
    {
        var s = shape ?? Shape;
        WriteDir(dir.Path, s, Hf(s, seed));
        foreach (var f in new[] { "vocab.json", "merges.txt" }) File.Copy(Path.Combine(TokenizerDir, f), dir[f]);
        return dir.Path;
    }

    /// <summary>Per class: every prompt's float64 embedding normalised, averaged, normalised again.</summary>
    private static double[] ExpectedWeights(Weights w, TextShape s, ZeroShotTask task)
    {
        var tok = ClipTokenizer.Load(TokenizerDir);
        var result = new double[task.Classes.Count * s.Projection];
        for (int c = 0; c < task.Classes.Count; c++)
        {
            var mean = new double[s.Projection];
            foreach (var t in task.Templates)
            {
                var ids = tok.EncodeFramed(ZeroShotTask.Prompt(t, task.Classes[c]));
                var e = Forward(w, s, ids, 1).Embeds;
                double n = Math.Sqrt(e.Sum(v => v * v));
                for (int i = 0; i < e.Length; i++) mean[i] += e[i] / n / task.Templates.Count;
            }
            double m = Math.Sqrt(mean.Sum(v => v * v));
            for (int i = 0; i < mean.Length; i++) result[c * s.Projection + i] = mean[i] / m;
        }
        return result;
    }

    [Theory]
    [InlineData(913, 1)]
    [InlineData(2, 4)]
    public void HeadMatchesTheFloat64Recipe(int eosTokenId, int batchSize)
    {
        var s = Shape with { EosTokenId = eosTokenId };
        using var dir = new TempDir();
        WriteModel(dir, seed: 3, s);
        using var src = ModelSource.Open(dir.Path);
        using var model = ClipTextModel.Load(src, new CpuBackend(2));
        var head = ZeroShotHeads.Build(model, ClipTokenizer.Load(dir.Path), Custom, batchSize);
        Assert.Equal((3, s.Projection), (head.Classes, head.Dim));
        Assert.Equal(Math.Exp(2.5), head.LogitScale, 5);
        double rel = Float64Reference.RelErr(head.Weight, ExpectedWeights(Hf(s, 3), s, Custom));
        Assert.InRange(rel, 0, 1e-4);
    }

    [Fact]
    public void BatchingAndPaddingDoNotChangeTheHead()
    {
        using var dir = new TempDir();
        WriteModel(dir, seed: 5);
        using var src = ModelSource.Open(dir.Path);
        using var model = ClipTextModel.Load(src, new CpuBackend(2));
        var tok = ClipTokenizer.Load(dir.Path);
        var one = ZeroShotHeads.Build(model, tok, Custom, 1);
        var all = ZeroShotHeads.Build(model, tok, Custom, 256);
        for (int i = 0; i < one.Weight.Length; i++) Assert.Equal(one.Weight[i], all.Weight[i], 5e-6f);
    }

    [Fact]
    public void CacheReturnsTheStoredHeadForTheSameModelAndTask()
    {
        using var dir = new TempDir();
        using var other = new TempDir();
        using var cache = new TempDir();
        WriteModel(dir, seed: 7);
        WriteModel(other, seed: 8);
        var be = new CpuBackend(2);
        var (first, hit1) = ZeroShotHeads.GetOrBuild(dir.Path, be, Custom, cache.Path);
        var (second, hit2) = ZeroShotHeads.GetOrBuild(dir.Path, be, Custom, cache.Path);
        Assert.False(hit1);
        Assert.True(hit2);
        Assert.Equal(first.Weight, second.Weight);
        Assert.Equal(first.LogitScale, second.LogitScale);
        Assert.False(ZeroShotHeads.GetOrBuild(other.Path, be, Custom, cache.Path).FromCache);
        Assert.False(ZeroShotHeads.GetOrBuild(dir.Path, be, Custom with { Templates = ["a photo of a {}."] }, cache.Path).FromCache);
        Assert.Equal(3, Directory.GetFiles(cache.Path, "*.safetensors").Length);

        using (var src = ModelSource.Open(dir.Path))
        {
            string entry = cache[ZeroShotHeads.Fingerprint(src, ClipTextConfig.Load(dir["config.json"]), ClipTokenizer.Load(dir.Path), Custom) + ".safetensors"];
            File.WriteAllText(entry, "not a safetensors file");
        }
        var (rebuilt, hit3) = ZeroShotHeads.GetOrBuild(dir.Path, be, Custom, cache.Path);
        Assert.False(hit3);
        Assert.Equal(first.Weight, rebuilt.Weight);
        Assert.True(ZeroShotHeads.GetOrBuild(dir.Path, be, Custom, cache.Path).FromCache);
    }

    [Fact]
    public void BuiltInTasksHaveThePublishedClassCounts()
    {
        var expected = new Dictionary<string, int>
        {
            ["sun397"] = 397, ["stanford_cars"] = 196, ["resisc45"] = 45, ["eurosat"] = 10, ["svhn"] = 10, ["gtsrb"] = 43, ["mnist"] = 10, ["dtd"] = 47,
            ["oxford_flowers102"] = 102, ["pcam"] = 2, ["fer2013"] = 7, ["oxford_iiit_pet"] = 37, ["stl10"] = 10, ["cifar100"] = 100, ["cifar10"] = 10,
            ["food101"] = 101, ["fashion_mnist"] = 10, ["emnist_letters"] = 26, ["kmnist"] = 10, ["rendered_sst2"] = 2,
        };
        Assert.Equal(expected.Keys.ToArray(), ZeroShotTasks.Names.ToArray());
        foreach (var (name, count) in expected)
        {
            var t = ZeroShotTasks.Get(name);
            Assert.Equal(count, t.Classes.Count);
            Assert.Equal(count, t.Classes.Distinct().Count());
            Assert.NotEmpty(t.Templates);
            Assert.All(t.Templates, x => Assert.Contains("{}", x));
        }
        // Spot checks against task-vectors' src/datasets/templates.py.
        Assert.Equal(["a centered satellite photo of {}.", "a centered satellite photo of a {}.", "a centered satellite photo of the {}."], ZeroShotTasks.Get("eurosat").Templates);
        Assert.Equal("annual crop land", ZeroShotTasks.Get("EuroSAT").Classes[0]);
        Assert.Equal(18, ZeroShotTasks.Get("resisc45").Templates.Count);
        Assert.Equal(8, ZeroShotTasks.Get("cars").Templates.Count);
        Assert.Equal("stanford_cars", ZeroShotTasks.Get("tanganke/stanford_cars").Name);
        Assert.Contains("fusion_bench", ZeroShotTasks.Source);
    }

    [Fact]
    public void PromptFormatsLikePythonStrFormat()
    {
        Assert.Equal("a photo of the number: \"7\".", ZeroShotTask.Prompt("a photo of the number: \"{}\".", "7"));
        Assert.Equal("{x} dog", ZeroShotTask.Prompt("{{x}} {}", "dog"));
        Assert.Contains("unknown task", Assert.Throws<BadInputException>(() => ZeroShotTasks.Get("imagenet-x")).Message);
    }

    [Fact]
    public void HeadsCommandWritesALinearHeadFile()
    {
        using var dir = new TempDir();
        using var cache = new TempDir();
        WriteModel(dir, seed: 3);
        File.WriteAllLines(dir["classes.txt"], Custom.Classes);
        File.WriteAllLines(dir["templates.txt"], Custom.Templates);
        var (code, stdout, err) = CliRunner.Run("heads", dir.Path, "--task", "custom", "--classes", dir["classes.txt"], "--templates", dir["templates.txt"],
            dir["head.safetensors"], "--cache-dir", cache.Path, "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("3 classes", stdout);
        var head = LinearHead.Load(dir["head.safetensors"]);
        Assert.Equal((3, Shape.Projection), (head.Classes, head.Dim));
        Assert.Equal(Math.Exp(2.5), head.Scale, 5);
        Assert.InRange(Float64Reference.RelErr(head.Weight, ExpectedWeights(Hf(Shape, 3), Shape, Custom)), 0, 1e-4);

        var again = CliRunner.Run("heads", dir.Path, "--task", "eurosat", dir["eurosat.safetensors"], "--cache-dir", cache.Path, "--device", "cpu");
        Assert.True(again.Exit == 0, again.Err);
        Assert.Equal(10, LinearHead.Load(dir["eurosat.safetensors"]).Classes);
        Assert.Contains("(from cache)", CliRunner.Run("heads", dir.Path, "--task", "eurosat", dir["eurosat2.safetensors"], "--cache-dir", cache.Path, "--device", "cpu").Out);
    }

    [Fact]
    public void HeadsCommandBadInputExitsTwoWithOneLine()
    {
        using var dir = new TempDir();
        WriteModel(dir, seed: 3);
        File.WriteAllText(dir["empty.txt"], "\n\n");
        File.WriteAllLines(dir["templates.txt"], ["a photo of a {}."]);
        File.WriteAllLines(dir["bad-templates.txt"], ["a photo"]);
        File.WriteAllLines(dir["classes.txt"], ["dog"]);
        void Fails(string expected, params string[] args)
        {
            var (code, _, err) = CliRunner.Run(["heads", .. args, "--no-cache", "--device", "cpu"]);
            Assert.Equal(2, code);
            Assert.Contains(expected, err);
            Assert.Single(err.Trim().Split('\n'));
        }
        Fails("unknown task", dir.Path, "--task", "nope", dir["h.safetensors"]);
        Fails("no class names", dir.Path, "--task", "x", "--classes", dir["empty.txt"], "--templates", dir["templates.txt"], dir["h.safetensors"]);
        Fails("has no {}", dir.Path, "--task", "x", "--classes", dir["classes.txt"], "--templates", dir["bad-templates.txt"], dir["h.safetensors"]);
        Fails("go together", dir.Path, "--task", "x", "--classes", dir["classes.txt"], dir["h.safetensors"]);
        using var vision = new TempDir();
        TinyModels.WriteClipDir(vision.Path, new TinyModels.ClipShape(), TinyModels.ClipHf(new TinyModels.ClipShape(), seed: 1));
        foreach (var f in new[] { "vocab.json", "merges.txt" }) File.Copy(Path.Combine(TokenizerDir, f), vision[f]);
        Fails("not a CLIP text checkpoint", vision.Path, "--task", "mnist", dir["h.safetensors"]);
        using var noTok = new TempDir();
        WriteDir(noTok.Path, Shape, Hf(Shape, 1));
        Fails("no CLIP tokenizer files", noTok.Path, "--task", "mnist", dir["h.safetensors"]);
        Assert.False(File.Exists(dir["h.safetensors"]));
    }
}
