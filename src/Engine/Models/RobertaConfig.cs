namespace TaskMerge.Engine.Models;

/// <summary>
/// RoBERTa hyper-parameters (HF <c>RobertaConfig</c>). Absent fields take the class defaults, which
/// are BERT's (eps 1e-12, 512 positions, 2 token types, vocabulary 30522) except pad 1, bos 0, eos 2;
/// published RoBERTa configs state their own values (eps 1e-5, 514 positions, 1 token type).
/// </summary>
public sealed record RobertaConfig
{
    /// <summary>Width W.</summary>
    public int HiddenSize { get; init; } = 768;

    /// <summary>Encoder layers.</summary>
    public int NumHiddenLayers { get; init; } = 12;

    /// <summary>Attention heads.</summary>
    public int NumAttentionHeads { get; init; } = 12;

    /// <summary>MLP width.</summary>
    public int IntermediateSize { get; init; } = 3072;

    /// <summary>MLP activation (<c>"gelu"</c> for RoBERTa).</summary>
    public Activation HiddenAct { get; init; } = Activation.Gelu;

    /// <summary>LayerNorm epsilon.</summary>
    public double LayerNormEps { get; init; } = 1e-12;

    /// <summary>Rows of the position table.</summary>
    public int MaxPositionEmbeddings { get; init; } = 512;

    /// <summary>Rows of the token-type table.</summary>
    public int TypeVocabSize { get; init; } = 2;

    /// <summary>Rows of the word table.</summary>
    public int VocabSize { get; init; } = 30522;

    /// <summary>Padding id; also the position-embedding padding index.</summary>
    public int PadTokenId { get; init; } = 1;

    /// <summary>Classifier outputs from config (<c>num_labels</c>, else the size of <c>id2label</c>, else 2); the checkpoint's <c>out_proj</c> decides.</summary>
    public int NumLabels { get; init; } = 2;

    /// <summary>Values per head.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Reads a RoBERTa <c>config.json</c>.</summary>
    public static RobertaConfig Load(string configPath) => From(ConfigJson.Load(configPath));

    internal static RobertaConfig From(ConfigJson j)
    {
        var c = new RobertaConfig
        {
            HiddenSize = j.Int("hidden_size", 768),
            NumHiddenLayers = j.Int("num_hidden_layers", 12),
            NumAttentionHeads = j.Int("num_attention_heads", 12),
            IntermediateSize = j.Int("intermediate_size", 3072),
            HiddenAct = j.Activation("hidden_act", Activation.Gelu),
            LayerNormEps = j.Double("layer_norm_eps", 1e-12),
            MaxPositionEmbeddings = j.Int("max_position_embeddings", 512),
            TypeVocabSize = j.Int("type_vocab_size", 2),
            VocabSize = j.Int("vocab_size", 30522),
            PadTokenId = j.Int("pad_token_id", 1),
            NumLabels = j.Int("num_labels", j.ObjectCount("id2label") ?? 2),
        };
        if (c.HiddenSize < 1 || c.NumHiddenLayers < 0 || c.NumAttentionHeads < 1 || c.IntermediateSize < 1 || !(c.LayerNormEps > 0))
            throw new BadInputException($"{j.Path}: RoBERTa config has a non-positive size: {c}");
        if (c.HiddenSize % c.NumAttentionHeads != 0)
            throw new BadInputException($"{j.Path}: hidden_size {c.HiddenSize} is not divisible by num_attention_heads {c.NumAttentionHeads}");
        return c;
    }
}
