using TaskMerge.Engine.Config;

namespace TaskMerge.Engine.Tests.InputBounds;

/// <summary>Config YAML is parsed within fixed bounds (<see cref="BoundedYaml"/>): deep nesting, alias bombs, huge files and extra documents are bad input naming file and line.</summary>
public class YamlBoundsTests
{
    private const string Head = "merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\n";

    [Theory]
    [InlineData(BoundedYaml.MaxDepth + 1)]
    [InlineData(100_000)]
    public void Deep_nesting_is_refused_without_a_stack_overflow(int depth)
    {
        string dir = TestPaths.NewTempDir();
        string yaml = Head + "parameters:\n  lambda: " + new string('[', depth) + new string(']', depth) + "\n";
        string line = BadInputAssert.Merge(BadInputAssert.Config(dir, yaml), Path.Combine(dir, "out"), "config.yml:5:", "nested deeper than 64");
        Assert.DoesNotContain("Operation is not valid", line);
    }

    [Fact]
    public void Nesting_within_the_cap_parses()
    {
        string yaml = "merge_method: linear\nmodels: [a]\nx: " + new string('[', BoundedYaml.MaxDepth - 1) + new string(']', BoundedYaml.MaxDepth - 1) + "\n";
        var cfg = MergeConfig.Parse(yaml, "c.yml");
        Assert.Equal("linear", cfg.MergeMethod);
    }

    [Fact]
    public void Alias_expansion_bomb_is_refused_at_once()
    {
        string dir = TestPaths.NewTempDir();
        var sb = new System.Text.StringBuilder(Head + "parameters:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (int i = 1; i <= 9; i++) sb.Append($"  a{i}: &a{i} [{string.Join(", ", Enumerable.Repeat($"*a{i - 1}", 10))}]\n");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        BadInputAssert.Merge(BadInputAssert.Config(dir, sb.ToString()), Path.Combine(dir, "out"), "config.yml:", "more than 100000 nodes");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
    }

    [Fact]
    public void Aliases_deepening_past_the_cap_are_refused()
    {
        var sb = new System.Text.StringBuilder("merge_method: linear\nmodels: [a]\nd0: &d0 [[[[[[[[[[x]]]]]]]]]]\n");
        for (int i = 1; i < 10; i++) sb.Append($"d{i}: &d{i} [[[[[[[[[[*d{i - 1}]]]]]]]]]]\n");
        var e = Assert.Throws<BadInputException>(() => MergeConfig.Parse(sb.ToString(), "c.yml"));
        Assert.Contains("aliases expanded", e.Message);
    }

    [Fact]
    public void Ordinary_anchors_and_aliases_still_work()
    {
        var cfg = MergeConfig.Parse("merge_method: ties\nbase_model: b\nmodels:\n  - model: e0\n    parameters: &p {density: 0.5, weight: 1}\n  - model: e1\n    parameters: *p\n", "c.yml");
        Assert.Equal(2, cfg.Models.Count);
        Assert.True(cfg.Models[1].Parameters.ContainsKey("density"));
    }

    [Fact]
    public void Oversized_config_is_refused_before_parsing()
    {
        string dir = TestPaths.NewTempDir();
        string cfg = Path.Combine(dir, "config.yml");
        File.WriteAllText(cfg, Head.Replace("ZOO", BadInputAssert.Zoo) + "# " + new string('x', BoundedYaml.MaxChars) + "\n");
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "config.yml", "at most");
    }

    [Theory]
    [InlineData("merge_method: [task_arithmetic\n", "config.yml:2:")]
    [InlineData("merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [ZOO/expert_0\n", "config.yml:4:")]
    [InlineData("merge_method: {a: b\n", "config.yml:2:")]
    [InlineData("merge_method: task_arithmetic\n  bad: indent\n", "config.yml:2:")]
    [InlineData("models: *nowhere\n", "config.yml:1:")]
    [InlineData("\"merge_method: x\n", "config.yml:")]
    public void Invalid_yaml_names_file_and_line(string yaml, string where)
    {
        string dir = TestPaths.NewTempDir();
        string line = BadInputAssert.Merge(BadInputAssert.Config(dir, yaml), Path.Combine(dir, "out"), where, "YAML");
        Assert.DoesNotContain("Operation is not valid", line);
    }

    [Theory]
    [InlineData("---\nmerge_method: linear\nmodels: [ZOO/expert_0]\n---\nmerge_method: linear\nmodels: [ZOO/expert_1]\n", "config.yml:4:")]
    [InlineData(Head + "---\n", "config.yml:4:")]
    [InlineData(Head + "...\n---\nname: second\n", "config.yml:5:")]
    public void A_second_document_is_refused(string yaml, string where)
    {
        string dir = TestPaths.NewTempDir();
        BadInputAssert.Merge(BadInputAssert.Config(dir, yaml), Path.Combine(dir, "out"), where, "second YAML document", "mergekit-multi");
    }

    [Fact]
    public void One_explicit_document_is_accepted()
    {
        var cfg = MergeConfig.Parse("---\nmerge_method: linear\nmodels: [a]\n...\n", "c.yml");
        Assert.Equal("linear", cfg.MergeMethod);
    }
}
