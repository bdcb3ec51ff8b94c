using TaskMerge.Engine.Config;
using TaskMerge.Engine.Methods;

namespace TaskMerge.Engine.Tests.Config;

public class MergeConfigTests
{
    private const string TiesYaml = """
        models:
          - model: base
          - model: expert_a
            parameters:
              density: [1, 0.7, 0.1]
              weight: 1.0
          - model: expert_b
            parameters:
              density: 0.5
              weight:
                - filter: mlp
                  value: 0.5
                - value: 0
        merge_method: ties
        base_model: base
        parameters:
          normalize: true
          int8_mask: true
          weight: 0.25
        dtype: float16
        """;

    private static MergeParameters Params(MergeConfig c, List<string>? warnings = null) =>
        new(new TiesMethod().Parameters, c.Parameters, c.Models.Skip(1).Select(m => m.Parameters).ToList(), warnings ?? []);

    [Fact]
    public void Parses_the_mergekit_ties_example_shape()
    {
        var c = MergeConfig.Parse(TiesYaml, "ties.yml");
        Assert.Equal("ties", c.MergeMethod);
        Assert.Equal("base", c.BaseModel);
        Assert.Equal(3, c.Models.Count);
        Assert.Equal("float16", c.DType);
        Assert.IsType<GradientSetting>(c.Models[1].Parameters["density"]);
        Assert.IsType<ConditionalSetting>(c.Models[2].Parameters["weight"]);
    }

    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(0.25, 0.85)]
    [InlineData(0.5, 0.7)]
    [InlineData(0.75, 0.4)]
    [InlineData(1.0, 0.1)]
    public void Gradient_interpolates_over_layer_depth_like_mergekit(double t, double expected)
    {
        var p = Params(MergeConfig.Parse(TiesYaml, "ties.yml"));
        Assert.Equal(expected, p.Float("density", "model.layers.3.mlp.up_proj.weight", t, model: 0), 12);
    }

    [Fact]
    public void Conditional_first_matching_filter_wins_and_model_scope_beats_global()
    {
        var p = Params(MergeConfig.Parse(TiesYaml, "ties.yml"));
        Assert.Equal(0.5, p.Float("weight", "model.layers.0.mlp.down_proj.weight", 0, model: 1));
        Assert.Equal(0.0, p.Float("weight", "model.layers.0.self_attn.q_proj.weight", 0, model: 1));
        Assert.Equal(1.0, p.Float("weight", "x", 0, model: 0));
        Assert.True(p.Bool("normalize"));
        Assert.Equal(1.0, p.Float("lambda"));
    }

    [Fact]
    public void Conditional_without_match_falls_through_to_the_global_value()
    {
        var c = MergeConfig.Parse("""
            merge_method: task_arithmetic
            base_model: b
            models:
              - model: e
                parameters:
                  weight: [{filter: attn, value: 2}]
            parameters:
              weight: 0.5
            """, "c.yml");
        var p = new MergeParameters(new TaskArithmeticMethod().Parameters, c.Parameters, [c.Models[0].Parameters], []);
        Assert.Equal(2.0, p.Float("weight", "a.attn.w", 0, 0));
        Assert.Equal(0.5, p.Float("weight", "a.mlp.w", 0, 0));
    }

    [Fact]
    public void Unknown_parameters_warn_and_bad_values_are_bad_input()
    {
        var c = MergeConfig.Parse("merge_method: ties\nmodels: [a]\nparameters: {densty: 0.5}\n", "c.yml");
        var w = new List<string>();
        _ = Params(c, w);
        Assert.Contains(w, x => x.Contains("densty"));
        var bad = MergeConfig.Parse("merge_method: ties\nmodels: [a]\nparameters: {normalize: maybe}\n", "c.yml");
        var e = Assert.Throws<BadInputException>(() => Params(bad));
        Assert.Contains("normalize", e.Message);
        Assert.Contains("c.yml:3", e.Message);
    }

    [Theory]
    [InlineData("merge_method: [ties\n", "invalid YAML")]
    [InlineData("- a\n- b\n", "mapping")]
    [InlineData("models: [a]\n", "merge_method")]
    [InlineData("merge_method: ties\n", "models")]
    [InlineData("merge_method: ties\nmodels: []\n", "models")]
    [InlineData("merge_method: ties\nslices: []\nmodels: [a]\n", "slices")]
    [InlineData("merge_method: ties\nmodels:\n  - parameters: {weight: 1}\n", "without 'model:'")]
    [InlineData("merge_method: ties\nmerge_method: linear\nmodels: [a]\n", "uplicate")]
    public void Malformed_configs_are_bad_input(string yaml, string expected)
    {
        var e = Assert.Throws<BadInputException>(() => MergeConfig.Parse(yaml, "bad.yml"));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("bad.yml", e.Message);
    }
}
