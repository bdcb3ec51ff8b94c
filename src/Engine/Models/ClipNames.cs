using TaskMerge.Engine.IO;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Models;

/// <summary>
/// Tensor names of a CLIP vision tower in either layout, under whatever prefix the checkpoint
/// uses, and the open_clip → HF mapping: the fused <c>in_proj_weight</c> [3W, W] is split q | k | v
/// along dim 0, and <c>proj</c> [W, E] is transposed to HF's <c>visual_projection.weight</c> [E, W].
/// </summary>
internal sealed class ClipNames
{
    private const string HfPatch = "embeddings.patch_embedding.weight";
    private const string OcPatch = "conv1.weight";

    private readonly string _prefix;
    private readonly string _projection;

    private ClipNames(ClipWeightLayout layout, string prefix, string projection)
    {
        (Layout, _prefix, _projection) = (layout, prefix, projection);
    }

    public ClipWeightLayout Layout { get; }

    private bool Hf => Layout == ClipWeightLayout.HuggingFace;

    public string PatchWeight => _prefix + (Hf ? HfPatch : OcPatch);
    public string ClassEmbedding => _prefix + (Hf ? "embeddings.class_embedding" : "class_embedding");
    public string Positions => _prefix + (Hf ? "embeddings.position_embedding.weight" : "positional_embedding");
    public string PreNorm => _prefix + (Hf ? "pre_layrnorm" : "ln_pre");
    public string PostNorm => _prefix + (Hf ? "post_layernorm" : "ln_post");

    /// <summary>The name prefix of encoder layer <paramref name="l"/>'s tensors.</summary>
    public string Layer(int l) => _prefix + (Hf ? $"encoder.layers.{l}." : $"transformer.resblocks.{l}.");

    /// <summary>The projection's name (HF <c>visual_projection.weight</c> [E, W], open_clip <c>proj</c> [W, E]).</summary>
    public string Projection => _projection;
    private string Fc1(int l) => Layer(l) + (Hf ? "mlp.fc1" : "mlp.c_fc");

    /// <summary>Finds the vision tower's names; <see cref="BadInputException"/> when the checkpoint has none.</summary>
    public static ClipNames Detect(ModelSource source)
    {
        string? hf = null, oc = null;
        foreach (var t in source.Tensors)
        {
            if (t.Name.EndsWith(HfPatch, StringComparison.Ordinal))
            {
                string p = t.Name[..^HfPatch.Length];
                if (hf is null || p.EndsWith("vision_model.", StringComparison.Ordinal)) hf = p;
            }
            else if (t.Name.EndsWith(OcPatch, StringComparison.Ordinal) && source.Contains(t.Name[..^OcPatch.Length] + "class_embedding"))
                oc ??= t.Name[..^OcPatch.Length];
        }
        if (hf is not null)
        {
            string outer = hf.EndsWith("vision_model.", StringComparison.Ordinal) ? hf[..^"vision_model.".Length] : hf;
            return new ClipNames(ClipWeightLayout.HuggingFace, hf, outer + "visual_projection.weight");
        }
        if (oc is not null) return new ClipNames(ClipWeightLayout.OpenClip, oc, oc + "proj");
        throw new BadInputException(
            $"{P(source.Path)}: not a CLIP vision checkpoint (no vision_model.{HfPatch} or visual.{OcPatch} tensor)");
    }

    /// <summary>
    /// A config from the tensor shapes, for checkpoints without <c>config.json</c>: OpenAI CLIP's
    /// head size 64, quick_gelu and eps 1e-5; sizes from the patch, position, MLP and projection tensors.
    /// </summary>
    public ClipVisionConfig Infer(ModelSource source)
    {
        long[] patch = source.Get(PatchWeight).Shape;
        long[] pos = source.Get(Positions).Shape;
        if (patch.Length != 4 || pos.Length != 2)
            throw new BadInputException($"{P(source.Path)}: {Q(PatchWeight)} {TensorInfo.FormatShape(patch)} / {Q(Positions)} {TensorInfo.FormatShape(pos)} are not a ViT patch embedding and position table");
        int w = (int)patch[0];
        int grid = (int)Math.Round(Math.Sqrt(pos[0] - 1));
        if (grid * grid + 1 != pos[0])
            throw new BadInputException($"{P(source.Path)}: {Q(Positions)} has {pos[0]} rows, not 1 + a square grid");
        if (w % 64 != 0)
            throw new BadInputException($"{P(source.Path)}: width {w} is not a multiple of 64, so the head count cannot be inferred; add a config.json");
        int layers = 0;
        while (source.Contains(Fc1(layers) + ".weight")) layers++;
        int intermediate = layers > 0 ? (int)source.Get(Fc1(0) + ".weight").Shape[0] : 4 * w;
        int projection = 512;
        if (source.TryGet(_projection, out var proj) && proj.Rank == 2) projection = (int)(Hf ? proj.Shape[0] : proj.Shape[1]);
        return new ClipVisionConfig
        {
            HiddenSize = w,
            NumChannels = (int)patch[1],
            PatchSize = (int)patch[2],
            ImageSize = grid * (int)patch[2],
            NumHiddenLayers = layers,
            NumAttentionHeads = w / 64,
            IntermediateSize = intermediate,
            ProjectionDim = projection,
        };
    }

    /// <summary>True when a layer at index <paramref name="layers"/> exists (the checkpoint is deeper than the config).</summary>
    public bool HasExtraLayer(ModelSource source, int layers) => source.Contains(Fc1(layers) + ".weight");

    /// <summary>Loads encoder layer <paramref name="l"/> and hands its parts to <paramref name="make"/>.</summary>
    public T LoadBlock<T>(WeightReader r, int l, ClipVisionConfig c, Func<Norm, SelfAttention, Norm, Linear, Linear, T> make) =>
        ClipTowerWeights.LoadBlock(r, Layout, Layer(l), c.HiddenSize, c.NumAttentionHeads, c.IntermediateSize, c.LayerNormEps, make);

    /// <summary>The projection as [E, W] on the backend, or null when the checkpoint has none.</summary>
    public Tensors.Tensor? LoadProjection(WeightReader r, int w) => ClipTowerWeights.LoadProjection(r, Layout, _projection, w);
}
