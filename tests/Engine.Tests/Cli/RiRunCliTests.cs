using System.Text.Json;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Merge;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.Models;

namespace TaskMerge.Engine.Tests.Cli;

/// <summary>
/// RI run features end to end: progress lines, the report's lr / grad-norm curves, checkpoints under
/// OUT_DIR, and open_clip-layout checkpoints giving the same adapted weights as the HF layout.
/// </summary>
public class RiRunCliTests
{
    // Width 64 with one head: open_clip checkpoints without config.json have their config inferred (head size 64).
    private static readonly TinyModels.ClipShape Shape = new(Hidden: 64, Layers: 1, Heads: 1, Intermediate: 96);

    /// <summary>
    /// base + 2 experts in HF layout (with config.json) or open_clip layout (prefix visual., no config.json),
    /// the same values either way; 2 heads and 12 aux images. Returns the config path.
    /// </summary>
    internal static string WriteZoo(string dir, bool openClip, string baseMethod = "task_arithmetic")
    {
        TinyModels.WriteRiZoo(dir, Shape, modelSeed: 11, seed: 13, (name, hf) =>
        {
            string d = Path.Combine(dir, name);
            if (openClip)
            {
                Directory.CreateDirectory(d);
                TinyModels.ToOpenClip(hf, Shape).WriteModel(d);
            }
            else TinyModels.WriteClipDir(d, Shape, hf);
        });
        string p = Path.Combine(dir, "config.yml");
        File.WriteAllText(p, $"""
            merge_method: ri
            base_model: {Path.Combine(dir, "base")}
            models:
              - model: {Path.Combine(dir, "expert_0")}
                parameters:
                  head: {Path.Combine(dir, "head_0.safetensors")}
              - model: {Path.Combine(dir, "expert_1")}
                parameters:
                  head: {Path.Combine(dir, "head_1.safetensors")}
            parameters:
              base_method: {baseMethod}
              aux_data: {Path.Combine(dir, "aux.safetensors")}
              ri_lr: 0.001
              ri_steps: 5
              ri_batch_size: 4
              ri_lr_schedule: cosine
              ri_warmup_steps: 1
              ri_grad_clip: 2.0
              ri_checkpoint_every: 2
            dtype: float32
            out_dtype: float32
            """);
        return p;
    }

    private static JsonElement Runs(string reportPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(reportPath));
        return doc.RootElement.GetProperty("method_report").GetProperty("ri_runs").Clone();
    }

    [Fact]
    public void Open_clip_layout_gives_the_hf_layout_s_adapted_weights_and_merge()
    {
        string hfDir = TestPaths.NewTempDir(), ocDir = TestPaths.NewTempDir();
        string hfCfg = WriteZoo(hfDir, openClip: false), ocCfg = WriteZoo(ocDir, openClip: true);
        string hfOut = TestPaths.NewTempDir(), ocOut = TestPaths.NewTempDir();
        var (code, o, e) = CliRunner.Run("ri", hfCfg, hfOut, "--quiet");
        Assert.True(code == 0, e + o);
        (code, o, e) = CliRunner.Run("ri", ocCfg, ocOut, "--quiet");
        Assert.True(code == 0, e + o);
        for (int k = 0; k < 2; k++)
        {
            using var hf = ModelSource.Open(Path.Combine(hfOut, $"expert_{k}"));
            using var oc = ModelSource.Open(Path.Combine(ocOut, $"expert_{k}"));
            var hfWeights = new Weights();
            foreach (var t in hf.Tensors) hfWeights.Add(t.Name, hf.ReadFloat32(t.Name), [.. t.Shape.Select(d => (int)d)]);
            var expected = TinyModels.ToOpenClip(hfWeights, Shape);
            Assert.Equal(expected.Names.Order(), oc.Tensors.Select(t => t.Name).Order());
            foreach (var name in expected.Names) Assert.Equal(expected[name], oc.ReadFloat32(name));
            using var orig = ModelSource.Open(Path.Combine(ocDir, $"expert_{k}"));
            Assert.NotEqual(orig.ReadFloat32("visual.proj"), oc.ReadFloat32("visual.proj"));
        }
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(ocOut, "ri_report.json"))))
            Assert.Equal("open_clip", doc.RootElement.GetProperty("method_report").GetProperty("ri_layout").GetString());

        // merge: task arithmetic over the fused in_proj is the fused task arithmetic of q, k, v.
        string hfMerged = TestPaths.NewTempDir(), ocMerged = TestPaths.NewTempDir();
        (code, o, e) = CliRunner.Run("merge", hfCfg, hfMerged, "--device", "cpu", "--quiet");
        Assert.True(code == 0, e + o);
        (code, o, e) = CliRunner.Run("merge", ocCfg, ocMerged, "--device", "cpu", "--quiet");
        Assert.True(code == 0, e + o);
        using var hm = ModelSource.Open(hfMerged);
        using var om = ModelSource.Open(ocMerged);
        var merged = new Weights();
        foreach (var t in hm.Tensors) merged.Add(t.Name, hm.ReadFloat32(t.Name), [.. t.Shape.Select(d => (int)d)]);
        var want = TinyModels.ToOpenClip(merged, Shape);
        foreach (var name in want.Names) Assert.Equal(want[name], om.ReadFloat32(name));
    }

    [Fact]
    public void Progress_lines_go_to_stderr_unless_quiet_and_the_report_has_the_new_curves()
    {
        string dir = TestPaths.NewTempDir(), outDir = TestPaths.NewTempDir();
        string cfg = WriteZoo(dir, openClip: false);
        var (code, stdout, stderr) = CliRunner.Run("ri", cfg, outDir);
        Assert.True(code == 0, stderr + stdout);
        TestContext.Current.TestOutputHelper?.WriteLine(stderr);
        Assert.Contains("[ri expert 1/2] step 1/5 · loss ", stderr);
        Assert.Contains("[ri expert 2/2] step 5/5 · loss ", stderr);
        Assert.Contains("images/s", stderr);
        Assert.DoesNotContain("[ri expert", stdout);
        Assert.False(Directory.Exists(Path.Combine(outDir, RiMethod.DefaultCheckpointDirectory)));

        var runs = Runs(Path.Combine(outDir, "ri_report.json"));
        Assert.Equal(2, runs.GetArrayLength());
        foreach (var r in runs.EnumerateArray())
        {
            var lr = r.GetProperty("lr").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            // cosine after 1 warmup step, base 1e-3 (float32): λ = 0, then ½(1 + cos(π(s − 2)/4)).
            double[] lambda = [0, 1, (1 + Math.Sqrt(0.5)) / 2, 0.5, (1 - Math.Sqrt(0.5)) / 2];
            for (int s = 0; s < 5; s++) Assert.Equal((double)1e-3f * lambda[s], lr[s], 1e-15);
            Assert.Equal(5, r.GetProperty("grad_norm").GetArrayLength());
            Assert.True(r.GetProperty("images_per_second").GetDouble() > 0);
            Assert.Equal(0, r.GetProperty("resumed_steps").GetInt32());
        }

        (code, stdout, stderr) = CliRunner.Run("ri", cfg, TestPaths.NewTempDir(), "--quiet");
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal("", stderr + stdout);

        (code, stdout, stderr) = CliRunner.Run("merge", cfg, TestPaths.NewTempDir(), "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("[ri expert 2/2] step 5/5", stderr);
    }

    [Fact]
    public void A_damaged_checkpoint_under_out_dir_is_a_warning_and_the_result_is_unchanged()
    {
        string dir = TestPaths.NewTempDir(), clean = TestPaths.NewTempDir(), outDir = TestPaths.NewTempDir();
        string cfg = WriteZoo(dir, openClip: false);
        var (code, stdout, stderr) = CliRunner.Run("ri", cfg, clean, "--quiet");
        Assert.True(code == 0, stderr + stdout);
        string ckpt = Path.Combine(outDir, RiMethod.DefaultCheckpointDirectory);
        Directory.CreateDirectory(ckpt);
        File.WriteAllText(Path.Combine(ckpt, "expert-0.safetensors"), "garbage");
        (code, stdout, stderr) = CliRunner.Run("ri", cfg, outDir, "--quiet");
        Assert.True(code == 0, stderr + stdout);
        var line = Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith("warning: ", line);
        Assert.Contains("expert-0.safetensors", line);
        Assert.False(Directory.Exists(ckpt));
        foreach (var k in new[] { 0, 1 })
        {
            using var a = ModelSource.Open(Path.Combine(clean, $"expert_{k}"));
            using var b = ModelSource.Open(Path.Combine(outDir, $"expert_{k}"));
            foreach (var t in a.Tensors) Assert.Equal(a.GetBytes(t.Name).ToArray(), b.GetBytes(t.Name).ToArray());
        }
    }

    [Fact]
    public void A_second_adaptation_with_the_same_checkpoints_restores_every_expert()
    {
        string dir = TestPaths.NewTempDir(), outDir = TestPaths.NewTempDir();
        string cfg = WriteZoo(dir, openClip: true);
        using var plan = MergePlan.Create(MergeConfig.Load(cfg), new MergeOptions());
        using var backend = new CpuBackend(1);
        var notes = new List<string>();
        var progress = new Recorder(notes);
        var ri = (RiMethod)plan.Method;
        var report1 = new Dictionary<string, object>();
        var first = ri.Adapt(MergeRunner.PrepareContext(plan, backend, 0, report1, progress, outDir));
        Assert.True(File.Exists(Path.Combine(outDir, RiMethod.DefaultCheckpointDirectory, "expert-1.safetensors")));
        var report2 = new Dictionary<string, object>();
        var second = ri.Adapt(MergeRunner.PrepareContext(plan, backend, 0, report2, progress, outDir));
        Assert.Equal(2, notes.Count(n => n.Contains("finished run restored")));
        Assert.Equal(0, progress.Steps - 10);  // 2 experts × 5 steps, all in the first call
        for (int k = 0; k < 2; k++)
        {
            Assert.Equal(first[k].Keys.Order(), second[k].Keys.Order());
            foreach (var (name, v) in first[k]) Assert.Equal(v, second[k][name]);
        }
        var runs = (List<Dictionary<string, object>>)report2["ri_runs"];
        Assert.All(runs, r => Assert.Equal(5, (int)r["resumed_steps"]));
        Assert.Equal(((List<Dictionary<string, object>>)report1["ri_runs"])[1]["loss"], runs[1]["loss"]);
        ri.DeleteCheckpoints();
        Assert.False(Directory.Exists(Path.Combine(outDir, RiMethod.DefaultCheckpointDirectory)));
    }

    [Fact]
    public void Bad_ri_run_parameters_are_exit_2_with_one_line()
    {
        foreach (var (from, to, needle) in new[]
        {
            ("ri_checkpoint_every: 2", "ri_checkpoint_every: -1", "ri_checkpoint_every"),
            ("ri_lr_schedule: cosine", "ri_lr_schedule: step", "ri_lr_schedule"),
            ("ri_grad_clip: 2.0", "ri_grad_clip: -0.5", "grad_clip"),
            ("ri_checkpoint_every: 2", "ri_checkpoint_every: 2\n  ri_checkpoint_dir: CONFIG", "is a file"),
        })
        {
            string dir = TestPaths.NewTempDir(), outDir = TestPaths.NewTempDir();
            string cfg = WriteZoo(dir, openClip: false);
            File.WriteAllText(cfg, File.ReadAllText(cfg).Replace(from, to.Replace("CONFIG", cfg)));
            var (code, _, stderr) = CliRunner.Run("ri", cfg, outDir);
            TestContext.Current.TestOutputHelper?.WriteLine(stderr);
            Assert.Equal(2, code);
            Assert.Contains(needle, stderr);
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.Empty(Directory.GetFileSystemEntries(outDir));
        }
    }

    private sealed class Recorder(List<string> notes) : IMergeProgress
    {
        public int Steps { get; private set; }
        public void StageStarted(string stage, long total) { }
        public void Advance(string item, long bytes) { }
        public void Warn(string message) => notes.Add("warning: " + message);
        public void Note(string message) => notes.Add(message);
        public void TrainingStep(string stage, int step, int steps, double loss, double itemsPerSecond) => Steps++;
    }
}
