namespace TaskMerge.Engine.Models;

/// <summary>
/// The text tower's hyper-parameters (HF <c>CLIPTextConfig</c>). Fields a <c>config.json</c> omits
/// take the class defaults: vocabulary 49408, hidden 512, intermediate 2048, 12 layers, 8 heads,
/// 77 positions, <c>quick_gelu</c>, eps 1e-5, projection 512, BOS 49406, EOS 49407.
/// </summary>
public sealed record ClipTextConfig
{
    /// <summary>The <c>eos_token_id</c> of configs written before transformers PR #24773; it selects argmax pooling.</summary>
    public const int LegacyEosTokenId = 2;

    /// <summary>Rows of the token embedding.</summary>
    public int VocabSize { get; init; } = 49408;

    /// <summary>Width W of the residual stream.</summary>
    public int HiddenSize { get; init; } = 512;

    /// <summary>MLP width.</summary>
    public int IntermediateSize { get; init; } = 2048;

    /// <summary>Encoder layers.</summary>
    public int NumHiddenLayers { get; init; } = 12;

    /// <summary>Attention heads (head size = W / heads).</summary>
    public int NumAttentionHeads { get; init; } = 8;

    /// <summary>Rows of the position embedding: the longest token sequence.</summary>
    public int MaxPositionEmbeddings { get; init; } = 77;

    /// <summary>MLP activation.</summary>
    public Activation HiddenAct { get; init; } = Activation.QuickGelu;

    /// <summary>LayerNorm epsilon.</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Width E of <c>text_projection</c> (used only when the checkpoint has one).</summary>
    public int ProjectionDim { get; init; } = 512;

    /// <summary>Start-of-text token id.</summary>
    public int BosTokenId { get; init; } = 49406;

    /// <summary>
    /// End-of-text token id. <see cref="LegacyEosTokenId"/> (OpenAI's published configs) pools at the
    /// argmax of the token ids, any other value at the first position holding it, as transformers does.
    /// </summary>
    public int EosTokenId { get; init; } = 49407;

    /// <summary>Values per head.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>
    /// Reads a <c>config.json</c> of <c>model_type</c> <c>clip_text_model</c> (fields at the top level)
    /// or <c>clip</c> (fields under <c>text_config</c>; <c>projection_dim</c> at the top level).
    /// </summary>
    public static ClipTextConfig Load(string configPath) => From(ConfigJson.Load(configPath));

    internal static ClipTextConfig From(ConfigJson root)
    {
        string? type = root.String("model_type");
        var t = root;
        int projection = root.Int("projection_dim", 512);
        if (type == "clip" || (type is null && root.Object("text_config") is not null))
            t = root.Object("text_config") ?? root;
        var c = new ClipTextConfig
        {
            VocabSize = t.Int("vocab_size", 49408),
            HiddenSize = t.Int("hidden_size", 512),
            IntermediateSize = t.Int("intermediate_size", 2048),
            NumHiddenLayers = t.Int("num_hidden_layers", 12),
            NumAttentionHeads = t.Int("num_attention_heads", 8),
            MaxPositionEmbeddings = t.Int("max_position_embeddings", 77),
            HiddenAct = t.Activation("hidden_act", Activation.QuickGelu),
            LayerNormEps = t.Double("layer_norm_eps", 1e-5),
            ProjectionDim = t.Has("projection_dim") ? t.Int("projection_dim", projection) : projection,
            BosTokenId = t.Int("bos_token_id", 49406),
            EosTokenId = t.Int("eos_token_id", 49407),
        };
        c.Validate(t.Path);
        return c;
    }

    /// <summary>Checks the values are positive and consistent; <see cref="BadInputException"/> naming <paramref name="origin"/> otherwise.</summary>
    public void Validate(string origin)
    {
        if (VocabSize < 1 || HiddenSize < 1 || IntermediateSize < 1 || NumHiddenLayers < 0 || NumAttentionHeads < 1 ||
            MaxPositionEmbeddings < 1 || !(LayerNormEps > 0) || ProjectionDim < 1)
            throw new BadInputException($"{origin}: CLIP text config has a non-positive size: {this}");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new BadInputException($"{origin}: hidden_size {HiddenSize} is not divisible by num_attention_heads {NumAttentionHeads}");
    }
}
