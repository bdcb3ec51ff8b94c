using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Methods;

namespace TaskMerge.Engine.Tests.Cli;

public class MergekitMethodNamesTests
{
    /// <summary>
    /// The names in mergekit's registry (arcee-ai/mergekit a6e4028, mergekit/merge_methods/registry.py plus
    /// the @merge_method modules imported by merge_methods/__init__.py).
    /// </summary>
    private static readonly string[] MergekitRegistry =
    [
        "linear", "slerp", "nuslerp", "passthrough", "model_stock", "arcee_fusion", "karcher", "task_arithmetic", "ties",
        "dare_ties", "dare_linear", "breadcrumbs", "breadcrumbs_ties", "della", "della_linear", "multislerp", "nearswap",
        "ram", "ramplus_tl", "sce",
    ];

    [Fact]
    public void Every_mergekit_registry_method_is_registered() =>
        Assert.Empty(MergekitRegistry.Except(MethodRegistry.Names));

    public static TheoryData<string, string, string> Configs => new()
    {
        { "slerp", "ZOO/expert_0", "t: [0, 1]" },
        { "nuslerp", "ZOO/expert_0\n  - model: ZOO/expert_1", "weight: 0.5\n  nuslerp_flatten: false\n  nuslerp_row_wise: true" },
        { "multislerp", "ZOO/expert_0\n  - model: ZOO/expert_1", "weight: 1\n  normalize_weights: true\n  eps: 1.0e-8" },
        { "karcher", "ZOO/expert_0\n  - model: ZOO/expert_1", "max_iter: 5\n  tol: 1.0e-6" },
        { "nearswap", "ZOO/expert_0", "t: 0.001" },
        { "ram", "ZOO/expert_0\n  - model: ZOO/expert_1", "epsilon: 1.0e-5" },
        { "ramplus_tl", "ZOO/expert_0\n  - model: ZOO/expert_1", "r: 0.1\n  alpha: 0.2\n  epsilon: 1.0e-5" },
        { "sce", "ZOO/expert_0\n  - model: ZOO/expert_1\n  - model: ZOO/expert_2", "select_topk: 0.5\n  int8_mask: true" },
        { "arcee_fusion", "ZOO/expert_0", "{}" },
    };

    [Fact]
    public void Passthrough_of_one_model_scales_the_filtered_tensors_and_copies_the_rest()
    {
        string dir = TestPaths.NewTempDir();
        string zoo = Path.Combine(TestPaths.Examples, "zoo");
        string cfg = Path.Combine(dir, "config.yml");
        File.WriteAllText(cfg, $"merge_method: passthrough\nmodels:\n  - model: {zoo}/expert_1\n    parameters:\n      scale:\n        - filter: mlp\n          value: 0.5\n        - value: 1.0\n");
        string outDir = Path.Combine(dir, "out");
        var (code, stdout, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        using var m = ModelSource.Open(outDir);
        using var e = ModelSource.Open(Path.Combine(zoo, "expert_1"));
        foreach (var t in e.Tensors.Where(t => t.DType.IsFloat()))
        {
            var expected = e.ReadFloat32(t.Name).Select(v => t.Name.Contains("mlp") ? v * 0.5f : v).ToArray();
            Assert.Equal(expected, m.ReadFloat32(t.Name));
        }
        File.WriteAllText(cfg, $"merge_method: passthrough\nmodels:\n  - model: {zoo}/expert_1\n  - model: {zoo}/expert_2\n");
        (code, _, stderr) = CliRunner.Run("merge", cfg, Path.Combine(dir, "two"), "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("exactly one model", stderr);
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void A_config_with_mergekit_parameter_names_runs_without_warnings(string method, string models, string parameters)
    {
        string dir = TestPaths.NewTempDir();
        string yaml = $"merge_method: {method}\nbase_model: ZOO/base\nmodels:\n  - model: ZOO/base\n  - model: {models}\nparameters:\n  {parameters}\ndtype: float32\n";
        string cfg = Path.Combine(dir, "config.yml");
        File.WriteAllText(cfg, yaml.Replace("ZOO", Path.Combine(TestPaths.Examples, "zoo")));
        string outDir = Path.Combine(dir, "out");
        var (code, stdout, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        Assert.DoesNotContain("not used by this method", stdout + stderr);
        Assert.DoesNotContain("not used by this method", File.ReadAllText(Path.Combine(outDir, "merge_report.json")));
        using var m = ModelSource.Open(outDir);
        Assert.Equal(41, m.Tensors.Count);
    }
}
