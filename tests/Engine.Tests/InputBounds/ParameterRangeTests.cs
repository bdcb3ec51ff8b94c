using System.Globalization;
using System.Text;
using TaskMerge.Engine.Methods;

namespace TaskMerge.Engine.Tests.InputBounds;

/// <summary>
/// Every numeric method parameter has a declared type and range (<see cref="ParameterDef.ValidRange"/>), enforced at
/// plan time, and docs/CONTRACT.md's table of them is the one these definitions generate.
/// </summary>
public class ParameterRangeTests
{
    private const string Begin = "<!-- parameter-ranges:begin -->";
    private const string End = "<!-- parameter-ranges:end -->";

    /// <summary>The contract's table: one row per distinct numeric parameter definition, with the methods declaring it.</summary>
    internal static string Table()
    {
        var rows = new List<(ParameterDef Def, List<string> Methods)>();
        foreach (string name in MethodRegistry.Names)
            foreach (var d in MethodRegistry.Create(name).Parameters.Where(d => d.Kind is ParameterKind.Float or ParameterKind.Int))
            {
                var row = rows.FirstOrDefault(r => r.Def.Name == d.Name && r.Def.Kind == d.Kind && r.Def.ValidRange == d.ValidRange
                                                   && Equals(r.Def.Default, d.Default) && r.Def.PerModel == d.PerModel);
                if (row.Def is null) rows.Add((d, [name]));
                else if (!row.Methods.Contains(name)) row.Methods.Add(name);
            }
        var sb = new StringBuilder();
        sb.Append("| parameter | type | valid values | default | per model | methods |\n|---|---|---|---|---|---|\n");
        foreach (var (d, methods) in rows.OrderBy(r => r.Def.Name, StringComparer.Ordinal).ThenBy(r => MethodIndex(r.Methods[0])))
        {
            string def = d.Default switch
            {
                null => "required",
                double v => v.ToString("R", CultureInfo.InvariantCulture),
                int v => v.ToString(CultureInfo.InvariantCulture),
                var v => v.ToString()!,
            };
            sb.Append($"| `{d.Name}` | {(d.Kind == ParameterKind.Int ? "integer" : "float")} | {d.ValidRange} | {def} | {(d.PerModel ? "yes" : "no")} | {string.Join(", ", methods)} |\n");
        }
        return sb.ToString();
    }

    private static int MethodIndex(string name) => MethodRegistry.Names.ToList().IndexOf(name);

    [Fact]
    public void Contract_table_matches_the_definitions()
    {
        string path = Path.Combine(TestPaths.RepoRoot, "docs", "CONTRACT.md");
        string text = File.ReadAllText(path);
        int b = text.IndexOf(Begin, StringComparison.Ordinal), e = text.IndexOf(End, StringComparison.Ordinal);
        string expected = Table();
        if (Environment.GetEnvironmentVariable("TASKMERGE_UPDATE_CONTRACT") == "1" && b >= 0 && e > b)
        {
            text = text[..(b + Begin.Length)] + "\n" + expected + text[e..];
            File.WriteAllText(path, text);
            e = text.IndexOf(End, StringComparison.Ordinal);
        }
        Assert.True(b >= 0 && e > b, $"docs/CONTRACT.md lacks the {Begin} … {End} section");
        string actual = text[(b + Begin.Length)..e].Trim('\n') + "\n";
        Assert.True(expected == actual, "docs/CONTRACT.md's parameter table is stale (rerun this test with TASKMERGE_UPDATE_CONTRACT=1); expected:\n" + expected);
    }

    [Fact]
    public void Every_numeric_parameter_has_a_finite_or_bounded_range()
    {
        foreach (string name in MethodRegistry.Names)
            foreach (var d in MethodRegistry.Create(name).Parameters.Where(d => d.Kind is ParameterKind.Float or ParameterKind.Int))
            {
                Assert.False(d.ValidRange.Contains(double.NaN), $"{name}.{d.Name}");
                Assert.False(d.ValidRange.Contains(double.PositiveInfinity), $"{name}.{d.Name}");
                if (d.Default is double v) Assert.True(d.ValidRange.Contains(v), $"{name}.{d.Name}: default {v} outside {d.ValidRange}");
                if (d.Default is int i) Assert.True(d.ValidRange.Contains(i), $"{name}.{d.Name}: default {i} outside {d.ValidRange}");
                if (d.Kind == ParameterKind.Int)
                    Assert.True(d.ValidRange.Min >= int.MinValue && d.ValidRange.Max <= int.MaxValue, $"{name}.{d.Name}");
            }
    }

    public static TheoryData<string, string, string> OutOfRange => new()
    {
        { "ties", "density: 1.5", "density" },
        { "ties", "density: 2", "density" },
        { "ties", "density: 1e400", "density" },
        { "ties", "density: -0.1", "density" },
        { "dare_ties", "density: 1.5", "density" },
        { "dare_linear", "density: .nan", "density" },
        { "ties", "density: [0.5, 1.2]", "density" },
        { "breadcrumbs", "gamma: 1.5", "gamma" },
        { "task_arithmetic", "weight: .inf", "weight" },
        { "task_arithmetic", "weight: 1e400", "weight" },
        { "task_arithmetic", "weight: -.inf", "weight" },
        { "linear", "weight: .nan", "weight" },
        { "tsv_m", "weight: .inf", "weight" },
    };

    public static TheoryData<string, string, string> GlobalOutOfRange => new()
    {
        { "task_arithmetic", "lambda: .nan", "lambda" },
        { "task_arithmetic", "lambda: 1e400", "lambda" },
        { "wudi", "iter_num: 1.5", "integer" },
        { "wudi", "iter_num: 1e9", "[0, 1000000]" },
        { "wudi", "iter_num: 1e12", "iter_num" },
        { "wudi", "iter_num: .nan", "iter_num" },
        { "wudi", "iter_num: -1", "iter_num" },
        { "awd", "iter_num: 2.5", "integer" },
        { "awd", "iter_num: 1e9", "iter_num" },
        { "awd", "iter_num: 99999999999", "iter_num" },
        { "awd", "lr: .nan", "lr" },
        { "iso_c", "scaling_factor: .inf", "scaling_factor" },
        { "iso_cts", "common_space_fraction: 1.5", "common_space_fraction" },
        { "karcher", "max_iter: 0", "max_iter" },
        { "karcher", "max_iter: 3.5", "integer" },
        { "ri", "ri_steps: 1e12", "ri_steps" },
        { "ri", "ri_steps: .nan", "ri_steps" },
        { "ri", "ri_steps: 10.5", "integer" },
        { "ri", "ri_batch_size: 0", "ri_batch_size" },
        { "ri", "ri_temperature: 0", "ri_temperature" },
        { "slerp", "t: .nan", "'t'" },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void Out_of_range_per_model_value_is_exit_2(string method, string setting, string mention)
    {
        string dir = TestPaths.NewTempDir();
        string cfg = BadInputAssert.Config(dir,
            $"merge_method: {method}\nbase_model: ZOO/base\nmodels:\n  - model: ZOO/expert_0\n    parameters: {{{setting}}}\n  - model: ZOO/expert_1\n");
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "config.yml:5:", mention);
    }

    [Theory]
    [MemberData(nameof(GlobalOutOfRange))]
    public void Out_of_range_global_value_is_exit_2(string method, string setting, string mention)
    {
        string dir = TestPaths.NewTempDir();
        string models = method == "slerp" ? "[ZOO/expert_0]" : "[ZOO/expert_0, ZOO/expert_1]";
        string cfg = BadInputAssert.Config(dir, $"merge_method: {method}\nbase_model: ZOO/base\nmodels: {models}\nparameters:\n  {setting}\n");
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "config.yml:5:", mention);
    }

    [Theory]
    [InlineData("density: 0")]
    [InlineData("density: 1")]
    [InlineData("density: [0, 1]")]
    [InlineData("density: 1.0e0")]
    public void Boundary_values_are_accepted(string setting)
    {
        string dir = TestPaths.NewTempDir();
        string cfg = BadInputAssert.Config(dir,
            $"merge_method: dare_linear\nbase_model: ZOO/base\nmodels:\n  - model: ZOO/expert_0\n    parameters: {{{setting}}}\n");
        var (code, _, err) = Cli.CliRunner.Run("merge", cfg, Path.Combine(dir, "out"), "--device", "cpu", "--quiet");
        Assert.True(code == 0, err);
    }

    [Fact]
    public void Range_text_is_interval_notation()
    {
        Assert.Equal("[0, 1]", ParameterRange.Fraction.ToString());
        Assert.Equal("(0, ∞)", ParameterRange.Positive.ToString());
        Assert.Equal("[0, ∞)", ParameterRange.NonNegative.ToString());
        Assert.Equal("finite", ParameterRange.Finite.ToString());
        Assert.True(ParameterRange.Positive.Contains(1e-300));
        Assert.False(ParameterRange.Positive.Contains(0));
    }
}
