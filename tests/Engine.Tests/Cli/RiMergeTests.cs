using System.Text.Json;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tests.Models;

namespace TaskMerge.Engine.Tests.Cli;

/// <summary><c>merge_method: ri</c> end to end through the CLI on a tiny CLIP zoo written here.</summary>
public class RiMergeTests
{
    private static readonly TinyModels.ClipShape Shape = new(Layers: 1);

    /// <summary>base + 2 experts (HF CLIP vision dirs), 2 heads, an aux pixel_values file; returns the config path.</summary>
    private static string WriteZoo(string dir, string baseMethod, bool withSecondHead = true, string? auxPath = null)
    {
        TinyModels.WriteRiZoo(dir, Shape, modelSeed: 1, seed: 5, (name, m) => TinyModels.WriteClipDir(Path.Combine(dir, name), Shape, m));
        string H(int k) => withSecondHead || k == 0 ? $"\n      head: {Path.Combine(dir, $"head_{k}.safetensors")}" : "";
        string yaml = $"""
            merge_method: ri
            base_model: {Path.Combine(dir, "base")}
            models:
              - model: {Path.Combine(dir, "expert_0")}
                parameters:
                  density: 0.5
                  weight: 1.0{H(0)}
              - model: {Path.Combine(dir, "expert_1")}
                parameters:
                  density: 0.5
                  weight: 1.0{H(1)}
            parameters:
              base_method: {baseMethod}
              aux_data: {auxPath ?? Path.Combine(dir, "aux.safetensors")}
              ri_lr: 0.001
              ri_steps: 3
              ri_batch_size: 4
            dtype: float32
            out_dtype: float32
            """;
        string p = Path.Combine(dir, "config.yml");
        File.WriteAllText(p, yaml);
        return p;
    }

    [Fact]
    public void Ri_with_ties_merges_and_reports_the_loss_curves()
    {
        string dir = TestPaths.NewTempDir(), outDir = TestPaths.NewTempDir();
        var (code, stdout, stderr) = CliRunner.Run("merge", WriteZoo(dir, "ties"), outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        using (var merged = ModelSource.Open(outDir))
        using (var b = ModelSource.Open(Path.Combine(dir, "base")))
            Assert.Equal(b.Tensors.Select(t => t.Name).Order(), merged.Tensors.Select(t => t.Name).Order());
        // RI changed the experts: the result differs from plain ties on the same zoo.
        string plainOut = TestPaths.NewTempDir(), plainCfg = Path.Combine(dir, "plain.yml");
        File.WriteAllText(plainCfg, File.ReadAllText(Path.Combine(dir, "config.yml")).Replace("merge_method: ri", "merge_method: ties"));
        (code, stdout, stderr) = CliRunner.Run("merge", plainCfg, plainOut, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        using (var a = ModelSource.Open(outDir))
        using (var b = ModelSource.Open(plainOut))
        {
            const string proj = "visual_projection.weight";
            Assert.NotEqual(a.ReadFloat32(proj), b.ReadFloat32(proj));
        }
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "merge_report.json")));
        string json = report.RootElement.ToString();
        Assert.Contains("ri_runs", json);
        Assert.Contains("interference_loss", json);
        var runs = FindProperty(report.RootElement, "ri_runs");
        Assert.NotNull(runs);
        Assert.Equal(2, runs!.Value.GetArrayLength());
        foreach (var r in runs.Value.EnumerateArray())
        {
            var loss = r.GetProperty("loss");
            Assert.Equal(3, loss.GetArrayLength());
            Assert.All(loss.EnumerateArray(), v => Assert.True(double.IsFinite(v.GetDouble()) && v.GetDouble() >= 0));
        }
    }

    [Fact]
    public void Bundled_example_resolves_heads_and_aux_next_to_the_config_and_lowers_interference()
    {
        string config = Path.Combine(TestPaths.Examples, "ri.yml"), outDir = Path.Combine(TestPaths.NewTempDir(), "out");
        Assert.False(File.Exists("zoo/aux.safetensors"), "the test needs a working directory without the example files");
        var (code, _, stderr) = CliRunner.Run("merge", config, outDir, "--device", "cpu", "--quiet");
        Assert.True(code == 0, stderr);
        Assert.True(File.Exists(Path.Combine(outDir, "model.safetensors")));
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "merge_report.json")));
        var runs = FindProperty(report.RootElement, "ri_runs");
        Assert.NotNull(runs);
        Assert.Equal(4, runs!.Value.GetArrayLength());
        foreach (var r in runs.Value.EnumerateArray())
        {
            double[] l2 = [.. r.GetProperty("interference_loss").EnumerateArray().Select(v => v.GetDouble())];
            double[] l1 = [.. r.GetProperty("task_loss").EnumerateArray().Select(v => v.GetDouble())];
            Assert.True(l2[^1] < 0.2 * l2[0], $"expert {r.GetProperty("expert")}: interference {l2[0]} → {l2[^1]}");
            Assert.True(l1[0] < 1e-6 && l1[^1] < 0.1 * l2[0], $"expert {r.GetProperty("expert")}: own-head KL {l1[0]} → {l1[^1]}");
        }
    }

    [Fact]
    public void Bad_aux_path_or_missing_head_is_exit_2_with_one_line()
    {
        string dir = TestPaths.NewTempDir();
        var (code, _, stderr) = CliRunner.Run("merge", WriteZoo(dir, "task_arithmetic", auxPath: Path.Combine(dir, "nope.safetensors")), TestPaths.NewTempDir(), "--device", "cpu");
        Assert.Equal(2, code);
        TestContext.Current.TestOutputHelper?.WriteLine(stderr);
        Assert.Contains("nope.safetensors", stderr);
        Assert.Single(stderr.Trim().Split('\n'));

        string dir2 = TestPaths.NewTempDir();
        (code, _, stderr) = CliRunner.Run("merge", WriteZoo(dir2, "task_arithmetic", withSecondHead: false), TestPaths.NewTempDir(), "--device", "cpu");
        Assert.Equal(2, code);
        TestContext.Current.TestOutputHelper?.WriteLine(stderr);
        Assert.Contains("head", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public void Ri_command_writes_the_adapted_experts_as_hf_directories()
    {
        string dir = TestPaths.NewTempDir(), outDir = TestPaths.NewTempDir();
        string cfg = WriteZoo(dir, "ties");
        var (code, stdout, stderr) = CliRunner.Run("ri", cfg, outDir, "--quiet");
        Assert.True(code == 0, stderr + stdout);
        Assert.True(File.Exists(Path.Combine(outDir, "ri_report.json")));
        for (int k = 0; k < 2; k++)
        {
            string d = Path.Combine(outDir, $"expert_{k}");
            Assert.True(File.Exists(Path.Combine(d, "config.json")));
            using var adapted = ModelSource.Open(d);
            using var orig = ModelSource.Open(Path.Combine(dir, $"expert_{k}"));
            Assert.Equal(orig.Tensors.Select(t => t.Name).Order(), adapted.Tensors.Select(t => t.Name).Order());
            Assert.NotEqual(orig.ReadFloat32("visual_projection.weight"), adapted.ReadFloat32("visual_projection.weight"));
        }
        // The adapted directories are readable models.
        (code, stdout, stderr) = CliRunner.Run("inspect", Path.Combine(outDir, "expert_0"));
        Assert.True(code == 0, stderr + stdout);

        File.WriteAllText(Path.Combine(dir, "plain.yml"), File.ReadAllText(cfg).Replace("merge_method: ri", "merge_method: ties"));
        (code, _, stderr) = CliRunner.Run("ri", Path.Combine(dir, "plain.yml"), TestPaths.NewTempDir());
        Assert.Equal(2, code);
        Assert.Contains("merge_method must be ri", stderr);

        (code, _, stderr) = CliRunner.Run("ri", cfg, TestPaths.NewTempDir(), "--device", "tpu");
        Assert.Equal(2, code);
        Assert.Contains("--device 'tpu'", stderr);
    }

    [Fact]
    public void Ri_merge_equals_the_base_method_on_the_exported_adapted_experts()
    {
        string dir = TestPaths.NewTempDir(), adaptedDir = TestPaths.NewTempDir(), riOut = TestPaths.NewTempDir(), taOut = TestPaths.NewTempDir();
        string cfg = WriteZoo(dir, "task_arithmetic");
        var (code, stdout, stderr) = CliRunner.Run("ri", cfg, adaptedDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("device cpu", stdout);
        (code, stdout, stderr) = CliRunner.Run("merge", cfg, riOut, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        string ta = Path.Combine(dir, "ta.yml");
        File.WriteAllText(ta, $"""
            merge_method: task_arithmetic
            base_model: {Path.Combine(dir, "base")}
            models:
              - model: {Path.Combine(adaptedDir, "expert_0")}
              - model: {Path.Combine(adaptedDir, "expert_1")}
            dtype: float32
            out_dtype: float32
            """);
        (code, stdout, stderr) = CliRunner.Run("merge", ta, taOut, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        using var a = ModelSource.Open(riOut);
        using var b = ModelSource.Open(taOut);
        foreach (var t in a.Tensors) Assert.Equal(b.ReadFloat32(t.Name), a.ReadFloat32(t.Name));
    }

    private static JsonElement? FindProperty(JsonElement e, string name)
    {
        if (e.ValueKind == JsonValueKind.Object)
            foreach (var p in e.EnumerateObject())
            {
                if (p.Name == name) return p.Value;
                if (FindProperty(p.Value, name) is { } f) return f;
            }
        else if (e.ValueKind == JsonValueKind.Array)
            foreach (var x in e.EnumerateArray())
                if (FindProperty(x, name) is { } f) return f;
        return null;
    }
}
