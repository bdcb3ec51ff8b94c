using TaskMerge.Engine.IO;

namespace TaskMerge.Engine.Tests.Cli;

public class MergekitOutputsCliTests
{
    private static string CopyZooModel(string dir, string name, string? architecture = null)
    {
        string dst = Path.Combine(dir, name);
        Directory.CreateDirectory(dst);
        string src = Path.Combine(TestPaths.Examples, "zoo", name);
        File.Copy(Path.Combine(src, "model.safetensors"), Path.Combine(dst, "model.safetensors"));
        string config = File.ReadAllText(Path.Combine(src, "config.json"));
        if (architecture is not null) config = config.Replace("CLIPVisionModelWithProjection", architecture);
        File.WriteAllText(Path.Combine(dst, "config.json"), config);
        return dst;
    }

    private static string Config(string dir, string method = "task_arithmetic") =>
        WriteText(Path.Combine(dir, "config.yml"), $"""
            merge_method: {method}
            base_model: {Path.Combine(dir, "base")}
            models:
              - model: {Path.Combine(dir, "expert_0")}
            parameters:
              weight: 0.5
            """);

    private static string WriteText(string path, string text)
    {
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void A_model_of_another_architecture_is_refused_unless_allow_crimes()
    {
        string dir = TestPaths.NewTempDir();
        CopyZooModel(dir, "base", "LlamaForCausalLM");
        string expert = CopyZooModel(dir, "expert_0", "MistralForCausalLM");
        string cfg = Config(dir);
        string outDir = Path.Combine(dir, "out");
        var (code, stdout, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains(expert, stderr);
        Assert.Contains("MistralForCausalLM", stderr);
        Assert.Contains("--allow-crimes", stderr);
        Assert.False(File.Exists(Path.Combine(outDir, "model.safetensors")));

        (code, stdout, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu", "--allow-crimes");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("MistralForCausalLM", File.ReadAllText(Path.Combine(outDir, "merge_report.json")));
    }

    [Fact]
    public void Same_architecture_merges_without_allow_crimes()
    {
        string dir = TestPaths.NewTempDir();
        CopyZooModel(dir, "base", "LlamaForCausalLM");
        CopyZooModel(dir, "expert_0", "LlamaForCausalLM");
        var (code, stdout, stderr) = CliRunner.Run("merge", Config(dir), Path.Combine(dir, "out"), "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
    }

    [Fact]
    public void The_model_card_has_mergekit_front_matter_the_method_models_and_the_config()
    {
        string dir = TestPaths.NewTempDir();
        CopyZooModel(dir, "base");
        CopyZooModel(dir, "expert_0");
        string cfg = Config(dir);
        string outDir = Path.Combine(dir, "merged-model");
        var (code, stdout, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        string card = File.ReadAllText(Path.Combine(outDir, "README.md"));
        var lines = card.Split('\n');
        Assert.Equal("---", lines[0]);
        int end = Array.IndexOf(lines, "---", 1);
        Assert.True(end > 0);
        var front = lines[1..end];
        Assert.Equal(["base_model: []", "library_name: transformers", "tags:", "- merge", "- taskmerge"], front);
        Assert.Contains("# merged-model", card);
        Assert.Contains($"task_arithmetic merge method using {Path.Combine(dir, "base")} as a base", card);
        Assert.Contains($"* {Path.Combine(dir, "expert_0")}", card);
        Assert.Contains("```yaml\n" + File.ReadAllText(cfg).TrimEnd() + "\n```", card);

        string noCard = Path.Combine(dir, "no-card");
        (code, stdout, stderr) = CliRunner.Run("merge", cfg, noCard, "--device", "cpu", "--no-model-card");
        Assert.True(code == 0, stderr + stdout);
        Assert.False(File.Exists(Path.Combine(noCard, "README.md")));
        Assert.True(File.Exists(Path.Combine(noCard, "model.safetensors")));
    }

    [Fact]
    public void A_slerp_card_lists_the_base_among_the_models_as_mergekit_does()
    {
        string dir = TestPaths.NewTempDir();
        CopyZooModel(dir, "base");
        CopyZooModel(dir, "expert_0");
        string cfg = WriteText(Path.Combine(dir, "slerp.yml"), $"""
            merge_method: slerp
            base_model: {Path.Combine(dir, "base")}
            models:
              - model: {Path.Combine(dir, "base")}
              - model: {Path.Combine(dir, "expert_0")}
            parameters:
              t: 0.5
            """);
        string outDir = Path.Combine(dir, "out");
        var (code, stdout, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        string card = File.ReadAllText(Path.Combine(outDir, "README.md"));
        Assert.Contains("using the slerp merge method.", card);
        Assert.Contains($"* {Path.Combine(dir, "base")}\n* {Path.Combine(dir, "expert_0")}\n", card);
    }
}

public class MergeHelpTests
{
    [Fact]
    public void Merge_help_lists_the_mergekit_flags_accepted_as_no_ops_and_the_model_card_switch()
    {
        var (code, stdout, stderr) = CliRunner.Run("merge", "--help");
        Assert.True(code == 0, stderr);
        foreach (var flag in new[] { "--lazy-unpickle", "--write-model-card", "--trust-remote-code", "--copy-tokenizer" })
            Assert.Contains(flag, stdout);
        Assert.Contains("accepted for mergekit compatibility (no effect)", stdout);
        Assert.Contains("--no-model-card", stdout);
    }
}
