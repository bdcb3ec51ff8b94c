using System.Text.RegularExpressions;

namespace TaskMerge.Engine.Merge;

/// <summary>
/// Layer depth t ∈ [0,1] of a tensor for gradient parameters, as mergekit (≥ 0.1.2) assigns it:
/// layer i of L gets i/(L−1) (a single layer gets 1), and every tensor outside the layer stack gets 0,
/// before it (embeddings) and after it (final norms, heads). mergekit before 0.1.2 (commit fd5eb19, #534)
/// evaluated the tensors after the stack at t = 1.
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
    public double Of(string name) =>
        LayerIndex(name) is int i ? (_layers <= 1 ? 1 : (double)i / (_layers - 1)) : 0;

    /// <summary>The layer index in a name like <c>model.layers.7.mlp</c> or <c>transformer.resblocks.3.attn</c>.</summary>
    public static int? LayerIndex(string name)
    {
        var m = LayerPattern().Match(name);
        return m.Success ? int.Parse(m.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    [GeneratedRegex(@"(?:^|\.)(?:layers?|h|blocks?|resblocks|encoder\.layer|decoder\.layer)\.(\d+)(?:\.|$)")]
    private static partial Regex LayerPattern();
}
