using TaskMerge.Engine.Merge;

namespace TaskMerge.Engine.Tests.Merge;

public class LayerDepthTests
{
    [Fact]
    public void Layers_spread_over_zero_to_one_and_tensors_outside_the_stack_take_zero_as_in_mergekit_0_1_2()
    {
        string[] names =
        [
            "model.embed_tokens.weight", "model.layers.0.mlp.w", "model.layers.2.mlp.w", "model.layers.4.self_attn.q_proj.weight",
            "model.norm.weight", "lm_head.weight",
        ];
        var d = new LayerDepth(names);
        Assert.Equal(0.0, d.Of("model.embed_tokens.weight"));
        Assert.Equal(0.0, d.Of("model.layers.0.mlp.w"));
        Assert.Equal(0.5, d.Of("model.layers.2.mlp.w"));
        Assert.Equal(1.0, d.Of("model.layers.4.self_attn.q_proj.weight"));
        Assert.Equal(0.0, d.Of("model.norm.weight"));
        Assert.Equal(0.0, d.Of("lm_head.weight"));
    }

    [Fact]
    public void A_single_layer_takes_t_one_as_mergekit_gives_a_one_layer_slice()
    {
        var d = new LayerDepth(["model.embed_tokens.weight", "model.layers.0.mlp.w", "lm_head.weight"]);
        Assert.Equal(1.0, d.Of("model.layers.0.mlp.w"));
        Assert.Equal(0.0, d.Of("lm_head.weight"));
    }

    [Theory]
    [InlineData("vision_model.encoder.layers.11.mlp.fc1.weight", 11)]
    [InlineData("transformer.resblocks.3.attn.in_proj_weight", 3)]
    [InlineData("roberta.encoder.layer.7.attention.self.query.weight", 7)]
    [InlineData("transformer.h.12.attn.c_attn.weight", 12)]
    [InlineData("vision_model.post_layernorm.weight", null)]
    public void Layer_index_is_found_in_common_naming_schemes(string name, int? expected) =>
        Assert.Equal(expected, LayerDepth.LayerIndex(name));
}
