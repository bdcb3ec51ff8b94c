using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Tests.Cli;

/// <summary>
/// Every kind of bad input gives exit code 2, exactly one stderr line naming the problem and no
/// stack trace, and leaves no model.safetensors (or shard) in OUT_DIR.
/// </summary>
public class BadInputTests
{
    private static string Zoo => Path.Combine(TestPaths.Examples, "zoo");

    private static void AssertBadInput(string[] args, string outDir, params string[] mustMention)
    {
        var (code, _, stderr) = CliRunner.Run(args);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("warning:")).ToArray();
        Assert.True(code == 2, $"exit {code}, stderr: {stderr}");
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.DoesNotContain("   at ", stderr);
        foreach (var m in mustMention) Assert.Contains(m, lines[0]);
        if (Directory.Exists(outDir))
            Assert.Empty(Directory.GetFiles(outDir, "*.safetensors*"));
    }

    private static string Config(string dir, string yaml)
    {
        string p = Path.Combine(dir, "config.yml");
        File.WriteAllText(p, yaml.Replace("ZOO", Zoo));
        return p;
    }

    public static TheoryData<string, string> BadConfigs => new()
    {
        { "merge_method: magic\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\n", "unknown merge_method 'magic'" },
        { "merge_method: ties\nmodels: [ZOO/expert_0]\n", "needs a base_model" },
        { "merge_method: ties\nbase_model: ZOO/base\nmodels: [ZOO/nope]\n", "nope" },
        { "merge_method: ties\nbase_model: ZOO/missing_base\nmodels: [ZOO/expert_0]\n", "missing_base" },
        { "merge_method: ties\nbase_model: ZOO/base\nmodels: [ZOO/expert_0\n", "invalid YAML" },
        { "merge_method: ties\nbase_model: ZOO/base\nmodels:\n  - model: ZOO/expert_0\n    parameters: {density: abc}\n", "density" },
        { "merge_method: ties\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\nparameters: {normalize: maybe}\n", "normalize" },
        { "merge_method: ties\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\nout_dtype: int4\n", "out_dtype 'int4'" },
        { "merge_method: ties\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\ndtype: float64\n", "float64" },
        { "merge_method: ties\nbase_model: ZOO/base\nmodels: []\n", "models" },
        { "merge_method: ties\nbase_model: ZOO/base\nslices:\n  - sources: []\n", "slices" },
        { "merge_method: ties\nbase_model: ZOO/base\nmodels: [ZOO/base]\n", "no models to merge" },
        { "merge_method: linear\nmodels:\n  - model: ZOO/expert_0\n    parameters: {weight: 1}\n  - model: ZOO/expert_1\n    parameters: {weight: -1}\n", "sum to 0" },
        { "merge_method: ties\nbase_model: ZOO/base\nmodels:\n  - model: ZOO/expert_0\n    parameters: {density: 0.001}\n", "keeps no element" },
        { "merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\nparameters: {lambda: [{filter: mlp, value: x}]}\n", "lambda" },
        { "merge_method: ties\nbase_model: ZOO/base\nmodels:\n  - model: ZOO/expert_0\n    extra: 1\n", "unknown key 'extra'" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void Bad_config_is_exit_2_with_one_line(string yaml, string expected)
    {
        string dir = TestPaths.NewTempDir();
        string outDir = Path.Combine(dir, "out");
        AssertBadInput(["merge", Config(dir, yaml), outDir, "--device", "cpu"], outDir, expected);
    }

    [Fact]
    public void Missing_config_file_is_exit_2()
    {
        string dir = TestPaths.NewTempDir();
        AssertBadInput(["merge", Path.Combine(dir, "none.yml"), Path.Combine(dir, "out")], Path.Combine(dir, "out"), "none.yml");
    }

    [Theory]
    [InlineData("--out-shard-size", "5X", "5X")]
    [InlineData("--device", "tpu", "tpu")]
    public void Bad_option_values_are_exit_2(string option, string value, string expected)
    {
        string dir = TestPaths.NewTempDir();
        string cfg = Config(dir, "merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\n");
        AssertBadInput(["merge", cfg, Path.Combine(dir, "out"), option, value], Path.Combine(dir, "out"), expected);
    }

    [Fact]
    public void Unknown_option_is_exit_2()
    {
        var (code, _, _) = CliRunner.Run("merge", "a.yml", "out", "--frobnicate");
        Assert.Equal(2, code);
    }

    [Fact]
    public void Shape_mismatch_is_exit_2_naming_the_tensor_unless_crimes_are_allowed()
    {
        string dir = TestPaths.NewTempDir();
        string bad = Path.Combine(dir, "bad");
        Directory.CreateDirectory(bad);
        using (var src = ModelSource.Open(Path.Combine(Zoo, "expert_0")))
        {
            var specs = src.Tensors.Select(t => new TensorSpec(t.Name, t.DType, t.Name.EndsWith("fc2.bias") ? [t.Shape[0] + 1] : t.Shape)).ToList();
            using var w = new SafetensorsWriter(bad, specs, long.MaxValue);
            foreach (var s in specs)
                w.Write(s.Name, s.Name.EndsWith("fc2.bias") ? new byte[s.ByteLength] : src.GetBytes(s.Name));
            w.Commit();
        }
        string cfg = Config(dir, $"merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [ZOO/expert_1, {bad}]\n");
        string outDir = Path.Combine(dir, "out");
        AssertBadInput(["merge", cfg, outDir, "--device", "cpu"], outDir, "layers.0.mlp.fc2.bias", "shape");

        var (code, _, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu", "--allow-crimes");
        Assert.Equal(0, code);
        Assert.Contains("skipped", stderr);
        Assert.Contains("fc2.bias", File.ReadAllText(Path.Combine(outDir, "merge_report.json")));
    }

    [Fact]
    public void Pickle_checkpoints_are_refused()
    {
        string dir = TestPaths.NewTempDir();
        string pt = Path.Combine(dir, "pt");
        Directory.CreateDirectory(pt);
        File.WriteAllBytes(Path.Combine(pt, "pytorch_model.bin"), [0x80, 0x02]);
        string cfg = Config(dir, $"merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [{pt}]\n");
        AssertBadInput(["merge", cfg, Path.Combine(dir, "out")], Path.Combine(dir, "out"), "safetensors");
    }

    public static TheoryData<string> MalformedFiles()
    {
        var d = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(TestPaths.Data, "malformed"), "*.safetensors").Order()) d.Add(Path.GetFileName(f));
        return d;
    }

    [Theory]
    [MemberData(nameof(MalformedFiles))]
    public void Malformed_safetensors_expert_is_exit_2_naming_the_file(string file)
    {
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(TestPaths.Data, "malformed", file);
        string cfg = Config(dir, $"merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [\"{path}\"]\n");
        string outDir = Path.Combine(dir, "out");
        AssertBadInput(["merge", cfg, outDir, "--device", "cpu"], outDir, file);
    }

    [Fact]
    public void Device_cuda_without_a_gpu_is_exit_2()
    {
        string dir = TestPaths.NewTempDir();
        string cfg = Config(dir, "merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\n");
        bool haveGpu;
        try { using var b = BackendFactory.Create("cuda", 0, out _); haveGpu = true; }
        catch (BadInputException) { haveGpu = false; }
        if (haveGpu)
            Assert.Equal(0, CliRunner.Run("merge", cfg, Path.Combine(dir, "out"), "--cuda").Exit);
        else
            AssertBadInput(["merge", cfg, Path.Combine(dir, "out"), "--cuda"], Path.Combine(dir, "out"), "cuda");
    }
}
