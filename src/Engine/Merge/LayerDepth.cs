using System.Text.RegularExpressions;

namespace TaskMerge.Engine.Merge;

/// <summary>
/// Layer depth t ∈ [0,1] of a tensor for gradient parameters, as mergekit assigns it:
/// layer i of L gets i/(L−1); tensors outside the layer stack get 0 before it (embeddings)
/// and 1 after it (final norms, heads).
/// </summary>
public sealed partial class LayerDepth
{
    private readonly int _layers;

    /// <summary>Builds the layer count from every tensor name of the base model.</summary>
    public LayerDepth(IEnumerable<string> names)
    {
        int max = -1;
        foreach (var n in names) if (LayerIndex(n) is int i) max = Math.Max(max, i);
        _layers = max + 1;
    }

    /// <summary>The depth of <paramref name="name"/>.</summary>
    public double Of(string name)
    {
        if (LayerIndex(name) is int i) return _layers <= 1 ? 0 : (double)i / (_layers - 1);
        return AfterStack().IsMatch(name) ? 1 : 0;
    }

    /// <summary>The layer index in a name like <c>model.layers.7.mlp</c> or <c>transformer.resblocks.3.attn</c>.</summary>
    public static int? LayerIndex(string name)
    {
        var m = LayerPattern().Match(name);
        return m.Success ? int.Parse(m.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    [GeneratedRegex(@"(?:^|\.)(?:layers?|h|blocks?|resblocks|encoder\.layer|decoder\.layer)\.(\d+)(?:\.|$)")]
    private static partial Regex LayerPattern();

    [GeneratedRegex(@"(lm_head|post_layernorm|final_layer_norm|ln_final|ln_post|ln_f|\bnorm\.|classifier|score\.|pooler|proj$|visual_projection|text_projection)")]
    private static partial Regex AfterStack();
}
