namespace TaskMerge.Engine.Models;

/// <summary>
/// The vision tower's hyper-parameters (HF <c>CLIPVisionConfig</c>). Fields a <c>config.json</c>
/// omits take the class defaults: hidden 768, intermediate 3072, 12 layers, 12 heads, 3 channels,
/// image 224, patch 32, <c>quick_gelu</c>, eps 1e-5, projection 512.
/// </summary>
public sealed record ClipVisionConfig
{
    /// <summary>Width W of the residual stream.</summary>
    public int HiddenSize { get; init; } = 768;

    /// <summary>MLP width.</summary>
    public int IntermediateSize { get; init; } = 3072;

    /// <summary>Encoder layers.</summary>
    public int NumHiddenLayers { get; init; } = 12;

    /// <summary>Attention heads (head size = W / heads).</summary>
    public int NumAttentionHeads { get; init; } = 12;

    /// <summary>Input channels.</summary>
    public int NumChannels { get; init; } = 3;

    /// <summary>Input image side in pixels.</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>Patch side P (the conv's kernel and stride).</summary>
    public int PatchSize { get; init; } = 32;

    /// <summary>MLP activation.</summary>
    public Activation HiddenAct { get; init; } = Activation.QuickGelu;

    /// <summary>LayerNorm epsilon.</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Width E of <c>visual_projection</c> (used only when the checkpoint has one).</summary>
    public int ProjectionDim { get; init; } = 512;

    /// <summary>Patches per side, image/patch.</summary>
    public int Grid => ImageSize / PatchSize;

    /// <summary>Tokens per image: class token plus grid².</summary>
    public int Tokens => Grid * Grid + 1;

    /// <summary>Values per head.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>
    /// Reads a <c>config.json</c> of <c>model_type</c> <c>clip_vision_model</c> (fields at the top
    /// level) or <c>clip</c> (fields under <c>vision_config</c>; <c>projection_dim</c> at the top level).
    /// </summary>
    public static ClipVisionConfig Load(string configPath) => From(ConfigJson.Load(configPath));

    internal static ClipVisionConfig From(ConfigJson root)
    {
        string? type = root.String("model_type");
        var v = root;
        int projection = root.Int("projection_dim", 512);
        if (type == "clip" || (type is null && root.Object("vision_config") is not null))
            v = root.Object("vision_config") ?? root;
        var c = new ClipVisionConfig
        {
            HiddenSize = v.Int("hidden_size", 768),
            IntermediateSize = v.Int("intermediate_size", 3072),
            NumHiddenLayers = v.Int("num_hidden_layers", 12),
            NumAttentionHeads = v.Int("num_attention_heads", 12),
            NumChannels = v.Int("num_channels", 3),
            ImageSize = v.Int("image_size", 224),
            PatchSize = v.Int("patch_size", 32),
            HiddenAct = v.Activation("hidden_act", Activation.QuickGelu),
            LayerNormEps = v.Double("layer_norm_eps", 1e-5),
            ProjectionDim = v.Has("projection_dim") ? v.Int("projection_dim", projection) : projection,
        };
        c.Validate(v.Path);
        return c;
    }

    /// <summary>Checks the values are positive and consistent; <see cref="BadInputException"/> naming <paramref name="origin"/> otherwise.</summary>
    public void Validate(string origin)
    {
        if (HiddenSize < 1 || IntermediateSize < 1 || NumHiddenLayers < 0 || NumAttentionHeads < 1 || NumChannels < 1 ||
            ImageSize < 1 || PatchSize < 1 || !(LayerNormEps > 0) || ProjectionDim < 1)
            throw new BadInputException($"{origin}: CLIP vision config has a non-positive size: {this}");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new BadInputException($"{origin}: hidden_size {HiddenSize} is not divisible by num_attention_heads {NumAttentionHeads}");
        if (ImageSize < PatchSize)
            throw new BadInputException($"{origin}: image_size {ImageSize} is smaller than patch_size {PatchSize}");
    }
}
