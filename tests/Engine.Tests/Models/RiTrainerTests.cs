using TaskMerge.Engine.Models;
using Xunit;

namespace TaskMerge.Engine.Tests.Models;

/// <summary>RI adaptation of one expert (<see cref="RiTrainer"/>) on a tiny CLIP tower with 3 tiny experts and random heads.</summary>
public sealed class RiTrainerTests
{
    private const int Classes = 6;

    private static readonly TinyModels.ClipShape Shape = new(Layers: 1);

    private static readonly TaskMerge.Engine.Tensors.Cpu.CpuBackend Cpu = new(2);

    internal static ClipVisionConfig Config(TinyModels.ClipShape s) => new()
    {
        HiddenSize = s.Hidden, IntermediateSize = s.Intermediate, NumHiddenLayers = s.Layers, NumAttentionHeads = s.Heads,
        ImageSize = s.Image, PatchSize = s.Patch, ProjectionDim = s.Projection,
    };

    /// <summary>θ0, three experts θ0 + τⱼ (random τ) and three random heads [6, E] with logit scale.</summary>
    internal static (Dictionary<string, float[]> Pre, Dictionary<string, float[]>[] Experts, float[][] Heads) Zoo(TinyModels.ClipShape s, int experts = 3)
    {
        var w = TinyModels.ClipHf(s, seed: 1);
        var pre = w.Names.ToDictionary(n => n, n => w[n]);
        var rng = new Random(7);
        var ex = new Dictionary<string, float[]>[experts];
        for (int k = 0; k < experts; k++)
            ex[k] = pre.ToDictionary(kv => kv.Key, kv =>
            {
                var tau = TinyModels.Random(rng, kv.Value.Length, 0.08);
                return kv.Value.Select((v, i) => v + tau[i]).ToArray();
            });
        float[][] heads = [.. Enumerable.Range(0, experts).Select(_ => TinyModels.Random(rng, Classes * s.Projection, 2.0))];
        return (pre, ex, heads);
    }

    /// <summary>
    /// Five full-batch AdamW steps against <c>data/reference/ri/make_ri_fixture.py</c> (PyTorch autograd
    /// through transformers' CLIP vision forward, torch.optim.AdamW): the loss curve, the task term and every
    /// adapted tensor. The batch is the whole auxiliary set, so the trainer's shuffled order only reorders sums.
    /// </summary>
    [Fact]
    public void FullBatchStepsMatchRecordedPyTorchAutogradAndAdamW()
    {
        string dir = Path.Combine(TestPaths.Data, "reference", "ri");
        static Dictionary<string, float[]> Weights(string modelDir)
        {
            using var src = TaskMerge.Engine.IO.ModelSource.Open(modelDir);
            return src.Tensors.ToDictionary(t => t.Name, t => src.ReadFloat32(t.Name));
        }
        var pre = Weights(Path.Combine(dir, "pretrained"));
        var expert = Weights(Path.Combine(dir, "expert"));
        var config = ClipVisionConfig.Load(Path.Combine(dir, "expert", "config.json"));
        using var headFile = TaskMerge.Engine.IO.ModelSource.Open(Path.Combine(dir, "heads.safetensors"));
        float[][] heads = [.. Enumerable.Range(0, 3).Select(j => headFile.ReadFloat32($"head_{j}"))];
        using var auxFile = TaskMerge.Engine.IO.ModelSource.Open(Path.Combine(dir, "aux.safetensors"));
        using var aux = RiAuxImages.InMemory(auxFile.ReadFloat32("pixel_values"), 8);
        var options = new RiOptions { LearningRate = 2e-3f, WeightDecay = 1e-4f, Steps = 5, BatchSize = 8, Alpha = 1, Seed = 1, Threads = 1 };
        var r = RiTrainer.Adapt(Cpu, config, pre, expert, heads, 0, aux, options);

        using var expected = TaskMerge.Engine.IO.ModelSource.Open(Path.Combine(dir, "expected.safetensors"));
        var loss = expected.ReadFloat32("loss");
        var taskLoss = expected.ReadFloat32("task_loss");
        for (int k = 0; k < 5; k++)
        {
            Assert.True(Math.Abs(r.Loss[k] - loss[k]) <= 1e-4 * loss[0], $"loss[{k}] = {r.Loss[k]:E6}, PyTorch {loss[k]:E6}");
            Assert.True(Math.Abs(r.TaskLoss[k] - taskLoss[k]) <= 1e-4 * loss[0], $"task_loss[{k}] = {r.TaskLoss[k]:E6}, PyTorch {taskLoss[k]:E6}");
        }
        Assert.True(loss[4] < loss[0]);
        foreach (var (name, start) in expert)
        {
            // The key bias adds q·b_k to every score of a query row, which softmax cancels: its true gradient
            // is 0 and both sides' Adam steps on it are rounding noise divided by its own magnitude.
            if (name.EndsWith("self_attn.k_proj.bias", StringComparison.Ordinal)) continue;
            var want = expected.ReadFloat32(name);
            var got = r.Adapted[name];
            double diff = 0, moved = 0;
            for (int i = 0; i < got.Length; i++)
            {
                diff += Math.Pow(got[i] - want[i], 2);
                moved += Math.Pow(want[i] - start[i], 2);
            }
            Assert.True(moved > 0, $"{name} did not move in PyTorch");
            Assert.True(Math.Sqrt(diff) <= 1e-3 * Math.Sqrt(moved), $"{name}: ‖ours − torch‖ = {Math.Sqrt(diff):E3}, ‖torch update‖ = {Math.Sqrt(moved):E3}");
        }
    }

    [Fact]
    public void AdaptationLowersTheObjectiveAndTheInterferenceAndKeepsTheExpert()
    {
        var config = Config(Shape);
        var (pre, experts, heads) = Zoo(Shape);
        const int auxCount = 48, held = 32;
        using var aux = RiAuxImages.InMemory(ClipVisionParityTests.Pixels(auxCount, Shape, 11), auxCount);
        var options = new RiOptions { LearningRate = 2e-3f, Steps = 80, BatchSize = 8, Seed = 3, Threads = 2 };
        var r = RiTrainer.Adapt(Cpu, config, pre, experts[0], heads, 0, aux, options);

        Assert.Equal(80, r.Loss.Length);
        double first = r.Loss[..5].Average(), last = r.Loss[^5..].Average();
        var test = ClipVisionParityTests.Pixels(held, Shape, 99);
        var before = RiTrainer.Evaluate(Cpu, config, pre, experts[0], experts[0], heads, 0, test, held);
        var after = RiTrainer.Evaluate(Cpu, config, pre, experts[0], r.Adapted, heads, 0, test, held);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"RI loss {first:E3} -> {last:E3}; held-out ξ(other heads) {before.InterferenceKl:E3} -> {after.InterferenceKl:E3}; own-head KL {after.TaskKl:E3}");
        Assert.True(last < 0.5 * first, $"RI loss {first:E3} -> {last:E3}");
        Assert.Equal(0, before.TaskKl, 1e-6);
        Assert.True(after.InterferenceKl < 0.5 * before.InterferenceKl, $"held-out interference {before.InterferenceKl:E3} -> {after.InterferenceKl:E3}");
        Assert.True(after.TaskKl < 0.3 * before.InterferenceKl, $"own-head KL {after.TaskKl:E3} vs interference {before.InterferenceKl:E3}");
        // Pretrained and other experts are untouched (the trainer copies the expert).
        Assert.NotSame(experts[0]["visual_projection.weight"], r.Adapted["visual_projection.weight"]);
    }

    [Fact]
    public void ReverseKlAdaptationAlsoLowersTheObjectiveAndTheInterference()
    {
        var config = Config(Shape);
        var (pre, experts, heads) = Zoo(Shape);
        const int auxCount = 48, held = 32;
        using var aux = RiAuxImages.InMemory(ClipVisionParityTests.Pixels(auxCount, Shape, 11), auxCount);
        var r = RiTrainer.Adapt(Cpu, config, pre, experts[2], heads, 2, aux,
            new RiOptions { LearningRate = 2e-3f, Steps = 60, BatchSize = 8, Seed = 4, Threads = 2, ReverseKl = true });
        double first = r.Loss[..5].Average(), last = r.Loss[^5..].Average();
        var test = ClipVisionParityTests.Pixels(held, Shape, 98);
        var before = RiTrainer.Evaluate(Cpu, config, pre, experts[2], experts[2], heads, 2, test, held);
        var after = RiTrainer.Evaluate(Cpu, config, pre, experts[2], r.Adapted, heads, 2, test, held);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"reverse-KL RI loss {first:E3} -> {last:E3}; held-out ξ {before.InterferenceKl:E3} -> {after.InterferenceKl:E3}; own-head KL {after.TaskKl:E3}");
        Assert.True(last < 0.5 * first, $"RI loss {first:E3} -> {last:E3}");
        Assert.True(after.InterferenceKl < 0.7 * before.InterferenceKl, $"held-out interference {before.InterferenceKl:E3} -> {after.InterferenceKl:E3}");
    }

    [Fact]
    public void BatchOrderAndCurveAreSeedDeterministic()
    {
        var config = Config(Shape);
        var (pre, experts, heads) = Zoo(Shape);
        using var aux = RiAuxImages.InMemory(ClipVisionParityTests.Pixels(10, Shape, 5), 10);
        var o = new RiOptions { LearningRate = 1e-3f, Steps = 4, BatchSize = 4, Seed = 9, Threads = 1, Temperature = 2 };
        var a = RiTrainer.Adapt(Cpu, config, pre, experts[1], heads, 1, aux, o);
        var b = RiTrainer.Adapt(Cpu, config, pre, experts[1], heads, 1, aux, o);
        var c = RiTrainer.Adapt(Cpu, config, pre, experts[1], heads, 1, aux, o with { Seed = 10 });
        Assert.Equal(a.Loss, b.Loss);
        Assert.Equal(a.Adapted["visual_projection.weight"], b.Adapted["visual_projection.weight"]);
        Assert.NotEqual(a.Loss, c.Loss);
        Assert.All(a.Loss, v => Assert.True(double.IsFinite(v) && v >= 0));
    }

    [Fact]
    public void AuxImagesFromAFolderAndFromAPixelValuesFileMatchTheirSource()
    {
        using var dir = new IO.TempDir();
        var rng = new Random(12);
        for (int i = 0; i < 3; i++)
        {
            var rgb = new byte[16 * 16 * 3];
            rng.NextBytes(rgb);
            Directory.CreateDirectory(Path.Combine(dir.Path, "imgs", "any"));
            TaskMerge.Engine.Tests.Eval.TestImages.WritePng(Path.Combine(dir.Path, "imgs", "any", $"{i}.png"), 16, 16, rgb);
        }
        var pre = new TaskMerge.Engine.Eval.ImagePreprocessor(16);
        using (var folder = RiAuxImages.Open(Path.Combine(dir.Path, "imgs"), pre, 1))
        using (var ds = TaskMerge.Engine.Eval.ImageDatasets.Open(Path.Combine(dir.Path, "imgs"), pre, 1))
        {
            Assert.Equal(3, folder.Count);
            var all = ds.Batch(0, 3).Pixels;
            int per = all.Length / 3;
            Assert.Equal(all.AsSpan(2 * per, per).ToArray().Concat(all.AsSpan(0, per).ToArray()), folder.Pixels([2, 0]));
        }
        var px = ClipVisionParityTests.Pixels(4, Shape, 3);
        string file = Path.Combine(dir.Path, "aux.safetensors");
        TestTensors.WriteFile(file, TestTensors.F32("pixel_values", px, 4, 3, 16, 16));
        using var t = RiAuxImages.Open(file, pre, 1);
        Assert.Equal(4, t.Count);
        int n = px.Length / 4;
        Assert.Equal(px.AsSpan(3 * n, n).ToArray(), t.Pixels([3]));
        Assert.Throws<BadInputException>(() => RiAuxImages.Open(file, new TaskMerge.Engine.Eval.ImagePreprocessor(32), 1));
    }

    [Fact]
    public void BadOptionsAreBadInput()
    {
        Assert.Throws<BadInputException>(() => new RiOptions { Steps = 0 }.Validate());
        Assert.Throws<BadInputException>(() => new RiOptions { LearningRate = -1 }.Validate());
        Assert.Throws<BadInputException>(() => new RiOptions { Temperature = 0 }.Validate());
        using var dir = new IO.TempDir();
        Assert.Throws<BadInputException>(() => RiAuxImages.Open(Path.Combine(dir.Path, "nope.safetensors"), new TaskMerge.Engine.Eval.ImagePreprocessor(16), 1));
    }
}
