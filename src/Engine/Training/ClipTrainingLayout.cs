using TaskMerge.Engine.Models;

namespace TaskMerge.Engine.Training;

/// <summary>
/// Maps <see cref="ClipVisionTraining"/>'s parameters (HF names) to a checkpoint's own vision-tower
/// tensors and back, for either layout under any prefix (<see cref="ClipNames"/>). HF: the same
/// tensors under the checkpoint's prefix. open_clip: q/k/v are row blocks 0/1/2 of the fused
/// <c>attn.in_proj_weight</c> [3W, W] / <c>in_proj_bias</c> [3W], <c>proj</c> [W, E] is the transpose of
/// <c>visual_projection.weight</c> [E, W], and ln_1/ln_2/c_fc/c_proj/conv1/ln_pre/ln_post/
/// class_embedding/positional_embedding are the HF tensors under their open_clip names. Pure data
/// movement: values are copied bit for bit.
/// </summary>
internal sealed class ClipTrainingLayout
{
    private enum Op { Copy, Rows, Transpose }

    private readonly record struct Source(string Tensor, Op Op, int Part);

    private readonly List<(string Name, int[] Shape, Source From)> _map = [];
    private readonly List<(string Name, int[] Shape)> _tensors = [];

    private ClipTrainingLayout(ClipWeightLayout layout) => Layout = layout;

    /// <summary>The checkpoint's layout.</summary>
    public ClipWeightLayout Layout { get; }

    /// <summary>The checkpoint tensors the tower is made of, with the shapes the config implies, in training-parameter order.</summary>
    public IReadOnlyList<(string Name, int[] Shape)> CheckpointTensors => _tensors;

    /// <summary>The layout of the tower that <paramref name="names"/> found, for <paramref name="config"/>.</summary>
    public static ClipTrainingLayout Create(ClipNames names, ClipVisionConfig config)
    {
        bool hf = names.Layout == ClipWeightLayout.HuggingFace;
        int w = config.HiddenSize, e = config.ProjectionDim;
        var layout = new ClipTrainingLayout(names.Layout);
        var own = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var (name, shape) in ClipVisionTraining.ParameterShapes(config))
        {
            var (tensor, tensorShape, op, part) = Locate(name, shape);
            layout._map.Add((name, shape, new Source(tensor, op, part)));
            if (own.TryAdd(tensor, tensorShape)) layout._tensors.Add((tensor, tensorShape));
        }
        return layout;

        (string, int[], Op, int) Locate(string name, int[] shape)
        {
            const string v = "vision_model.", layers = v + "encoder.layers.";
            if (name == ClipVisionTraining.Projection)
                return hf ? (names.Projection, shape, Op.Copy, 0) : (names.Projection, [w, e], Op.Transpose, 0);
            if (name == ClipVisionTraining.PatchWeight) return (names.PatchWeight, shape, Op.Copy, 0);
            if (name == ClipVisionTraining.ClassEmbedding) return (names.ClassEmbedding, shape, Op.Copy, 0);
            if (name == ClipVisionTraining.Positions) return (names.Positions, shape, Op.Copy, 0);
            if (name.StartsWith(ClipVisionTraining.PreNorm + ".", StringComparison.Ordinal))
                return (names.PreNorm + name[ClipVisionTraining.PreNorm.Length..], shape, Op.Copy, 0);
            if (name.StartsWith(ClipVisionTraining.PostNorm + ".", StringComparison.Ordinal))
                return (names.PostNorm + name[ClipVisionTraining.PostNorm.Length..], shape, Op.Copy, 0);
            if (!name.StartsWith(layers, StringComparison.Ordinal)) throw new InvalidOperationException($"unmapped training parameter {name}");
            string rest = name[layers.Length..];
            int dot = rest.IndexOf('.');
            int l = int.Parse(rest[..dot], System.Globalization.CultureInfo.InvariantCulture);
            string local = rest[(dot + 1)..], prefix = names.Layer(l);
            if (hf) return (prefix + local, shape, Op.Copy, 0);
            string suffix = local[(local.LastIndexOf('.') + 1)..];
            string module = local[..local.LastIndexOf('.')];
            int qkv = Array.IndexOf(["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], module);
            if (qkv >= 0) return (prefix + "attn.in_proj_" + suffix, suffix == "weight" ? [3 * w, w] : [3 * w], Op.Rows, qkv);
            string mapped = module switch
            {
                "self_attn.out_proj" => "attn.out_proj",
                "layer_norm1" => "ln_1",
                "layer_norm2" => "ln_2",
                "mlp.fc1" => "mlp.c_fc",
                "mlp.fc2" => "mlp.c_proj",
                _ => throw new InvalidOperationException($"unmapped training parameter {name}"),
            };
            return (prefix + mapped + "." + suffix, shape, Op.Copy, 0);
        }
    }

    /// <summary>The training parameters by HF name, built from the checkpoint tensors that <paramref name="read"/> returns (each read once).</summary>
    public Dictionary<string, float[]> ToTraining(Func<string, float[]> read)
    {
        var cache = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var o = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (name, shape, from) in _map)
        {
            if (!cache.TryGetValue(from.Tensor, out var src)) cache[from.Tensor] = src = read(from.Tensor);
            int len = shape.Aggregate(1, (a, d) => a * d);
            o[name] = from.Op switch
            {
                Op.Rows => src.AsSpan(from.Part * len, len).ToArray(),
                Op.Transpose => Transpose(src, shape[1], shape[0]),
                _ => (float[])src.Clone(),
            };
        }
        return o;
    }

    /// <summary>The checkpoint tensors by the checkpoint's names, built from training parameters by HF name.</summary>
    public Dictionary<string, float[]> FromTraining(IReadOnlyDictionary<string, float[]> training)
    {
        var o = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var sizes = _tensors.ToDictionary(t => t.Name, t => t.Shape.Aggregate(1, (a, d) => a * d), StringComparer.Ordinal);
        foreach (var (name, shape, from) in _map)
        {
            var src = training[name];
            switch (from.Op)
            {
                case Op.Rows:
                    if (!o.TryGetValue(from.Tensor, out var fused)) o[from.Tensor] = fused = new float[sizes[from.Tensor]];
                    src.CopyTo(fused, from.Part * src.Length);
                    break;
                case Op.Transpose:
                    o[from.Tensor] = Transpose(src, shape[0], shape[1]);
                    break;
                default:
                    o[from.Tensor] = src;
                    break;
            }
        }
        return o;
    }

    /// <summary>[rows, cols] → [cols, rows].</summary>
    private static float[] Transpose(float[] a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
        return t;
    }
}
