using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tests.Models;
using TaskMerge.Engine.Training;
using Xunit;

namespace TaskMerge.Engine.Tests.Training;

/// <summary>Resumable RI runs (<see cref="RiCheckpointStore"/>): interrupted + resumed = uninterrupted, byte for byte.</summary>
public sealed class RiCheckpointTests
{
    private static readonly TaskMerge.Engine.Tensors.Cpu.CpuBackend Cpu = new(2);

    private static readonly TinyModels.ClipShape Shape = new(Layers: 1);

    // 10 aux images in batches of 4: batches span passes, so the replayed batch order matters.
    private static readonly RiOptions Options = new()
    {
        LearningRate = 1e-3f, Steps = 7, BatchSize = 4, Seed = 5, Threads = 1,
        LrSchedule = RiLrSchedule.Cosine, WarmupSteps = 2, GradClip = 5.0,
    };

    private sealed class Fixture : IDisposable
    {
        public readonly ClipVisionConfig Config = RiTrainerTests.Config(Shape);
        public readonly Dictionary<string, float[]> Pre;
        public readonly Dictionary<string, float[]>[] Experts;
        public readonly float[][] Heads;
        public readonly IRiAuxImages Aux = RiAuxImages.InMemory(ClipVisionParityTests.Pixels(10, Shape, 21), 10);
        public readonly IO.TempDir Dir = new();
        public readonly List<string> Warnings = [], Notes = [];

        public Fixture() => (Pre, Experts, Heads) = RiTrainerTests.Zoo(Shape);

        public RiCheckpointStore Store(int every = 2) => new(Dir["ckpt"], every, Warnings.Add, Notes.Add);

        public RiResult Run(RiOptions o, RiRunHooks? hooks = null, int expert = 1) =>
            RiTrainer.Adapt(Cpu, Config, Pre, Experts[expert], Heads, expert, Aux, o, hooks);

        public void Dispose()
        {
            Aux.Dispose();
            Dir.Dispose();
        }
    }

    private static void AssertSameRun(RiResult expected, RiResult actual)
    {
        Assert.Equal(expected.Loss, actual.Loss);
        Assert.Equal(expected.TaskLoss, actual.TaskLoss);
        Assert.Equal(expected.InterferenceLoss, actual.InterferenceLoss);
        Assert.Equal(expected.LearningRate, actual.LearningRate);
        Assert.Equal(expected.GradNorm, actual.GradNorm);
        Assert.Equal(expected.Adapted.Keys, actual.Adapted.Keys);
        foreach (var (name, v) in expected.Adapted) Assert.Equal(v, actual.Adapted[name]);
    }

    /// <summary>Runs with checkpoints and cancels right after step <paramref name="stopAfter"/>.</summary>
    private static void Interrupt(Fixture f, RiCheckpointStore store, int stopAfter, RiOptions? o = null)
    {
        using var cts = new CancellationTokenSource();
        var hooks = new RiRunHooks
        {
            Checkpoints = store, Cancellation = cts.Token,
            OnStep = s => { if (s.Step == stopAfter) cts.Cancel(); },
        };
        Assert.Throws<OperationCanceledException>(() => f.Run(o ?? Options, hooks));
    }

    [Theory]
    [InlineData(5)]  // last checkpoint at step 4: step 5 is recomputed
    [InlineData(2)]
    public void Interrupted_and_resumed_run_equals_the_uninterrupted_run(int stopAfter)
    {
        using var f = new Fixture();
        var whole = f.Run(Options);
        var store = f.Store();
        Interrupt(f, store, stopAfter);
        Assert.True(File.Exists(Path.Combine(store.Directory, "expert-1.safetensors")));

        var steps = new List<int>();
        var resumed = f.Run(Options, new RiRunHooks { Checkpoints = store, OnStep = s => steps.Add(s.Step) });
        int restored = stopAfter / 2 * 2;
        Assert.Equal(restored, resumed.ResumedSteps);
        Assert.Equal(Enumerable.Range(restored + 1, Options.Steps - restored), steps);
        AssertSameRun(whole, resumed);
        Assert.Empty(f.Warnings);
        Assert.Contains(f.Notes, n => n.Contains($"resuming at step {restored + 1}"));
    }

    [Fact]
    public void A_finished_expert_is_restored_without_recomputing()
    {
        using var f = new Fixture();
        var store = f.Store(every: 100);
        var first = f.Run(Options, new RiRunHooks { Checkpoints = store });
        Assert.Equal(0, first.ResumedSteps);
        var steps = new List<int>();
        var again = f.Run(Options, new RiRunHooks { Checkpoints = store, OnStep = s => steps.Add(s.Step) });
        Assert.Equal(Options.Steps, again.ResumedSteps);
        Assert.Empty(steps);
        Assert.Equal(0, again.TeacherImagesForwarded);
        AssertSameRun(first, again);
        // Finished checkpoints drop the Adam moments.
        using (var file = SafetensorsFile.Open(Path.Combine(store.Directory, "expert-1.safetensors")))
        {
            Assert.DoesNotContain(file.Tensors, t => t.Name.StartsWith("adam_", StringComparison.Ordinal));
            Assert.Contains(file.Tensors, t => t.Name == "param/visual_projection.weight");
        }
        store.Delete();
        Assert.False(Directory.Exists(store.Directory));
    }

    [Fact]
    public void A_checkpoint_of_other_options_or_inputs_is_ignored_with_a_warning()
    {
        using var f = new Fixture();
        var whole = f.Run(Options);
        var store = f.Store();
        Interrupt(f, store, 4, Options with { LearningRate = 2e-3f });
        var resumed = f.Run(Options, new RiRunHooks { Checkpoints = store });
        Assert.Equal(0, resumed.ResumedSteps);
        AssertSameRun(whole, resumed);
        Assert.Contains(f.Warnings, w => w.Contains("expert-1.safetensors") && w.Contains("other inputs or options"));

        // Another expert's inputs under this expert's file name: also a mismatch.
        f.Warnings.Clear();
        var store2 = new RiCheckpointStore(f.Dir["ckpt2"], 2, f.Warnings.Add);
        Interrupt(f, store2, 4);
        var experts = f.Experts;
        (experts[1], experts[2]) = (experts[2], experts[1]);
        var other = f.Run(Options, new RiRunHooks { Checkpoints = store2 });
        Assert.Equal(0, other.ResumedSteps);
        Assert.Single(f.Warnings);
    }

    [Theory]
    [InlineData("truncate")]
    [InlineData("flip-data")]
    [InlineData("garbage")]
    public void A_damaged_checkpoint_is_ignored_with_a_warning(string damage)
    {
        using var f = new Fixture();
        var whole = f.Run(Options);
        var store = f.Store();
        Interrupt(f, store, 5);
        string path = Path.Combine(store.Directory, "expert-1.safetensors");
        var bytes = File.ReadAllBytes(path);
        switch (damage)
        {
            case "truncate":
                File.WriteAllBytes(path, bytes[..(bytes.Length - 100)]);
                break;
            case "flip-data":
                bytes[^40] ^= 0x10; // inside the data section: only the checksum can tell
                File.WriteAllBytes(path, bytes);
                break;
            default:
                File.WriteAllText(path, "not a safetensors file");
                break;
        }
        var resumed = f.Run(Options, new RiRunHooks { Checkpoints = store });
        Assert.Equal(0, resumed.ResumedSteps);
        AssertSameRun(whole, resumed);
        var w = Assert.Single(f.Warnings);
        Assert.Contains("unreadable", w);
        Assert.DoesNotContain('\n', w);
    }

    [Fact]
    public void Aux_identity_changes_with_the_images()
    {
        using var dir = new IO.TempDir();
        string root = Path.Combine(dir.Path, "imgs"), cls = Path.Combine(root, "any");
        Directory.CreateDirectory(cls);
        var rng = new Random(3);
        var rgb = new byte[16 * 16 * 3];
        for (int i = 0; i < 2; i++)
        {
            rng.NextBytes(rgb);
            TaskMerge.Engine.Tests.Eval.TestImages.WritePng(Path.Combine(cls, $"{i}.png"), 16, 16, rgb);
        }
        var pre = new TaskMerge.Engine.Eval.ImagePreprocessor(16);
        string Identity(TaskMerge.Engine.Eval.ImagePreprocessor p)
        {
            using var a = RiAuxImages.Open(root, p, 1);
            return a.Identity;
        }
        string before = Identity(pre);
        Assert.Equal(before, Identity(pre));
        Assert.NotEqual(before, Identity(new TaskMerge.Engine.Eval.ImagePreprocessor(16, mean: [0.5f, 0.5f, 0.5f])));
        TaskMerge.Engine.Tests.Eval.TestImages.WritePng(Path.Combine(cls, "2.png"), 16, 16, rgb);
        Assert.NotEqual(before, Identity(pre));

        var px = ClipVisionParityTests.Pixels(2, Shape, 1);
        using var m1 = RiAuxImages.InMemory(px, 2);
        using var m2 = RiAuxImages.InMemory([.. px.Select((v, i) => i == 7 ? v + 1e-3f : v)], 2);
        Assert.NotEqual(m1.Identity, m2.Identity);
    }
}
