using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Models;

/// <summary>How a checkpoint names the vision tower's tensors.</summary>
public enum ClipWeightLayout
{
    /// <summary>HF transformers (<c>vision_model.embeddings.patch_embedding.weight</c>, ...).</summary>
    HuggingFace,

    /// <summary>open_clip / OpenAI (<c>visual.conv1.weight</c>, fused <c>attn.in_proj_weight</c>, <c>proj</c> [W, E]).</summary>
    OpenClip,
}

/// <summary>Outputs of <see cref="ClipVisionModel.Forward"/>; the caller disposes them.</summary>
public sealed class ClipVisionOutput : IDisposable
{
    internal ClipVisionOutput(Tensor lastHidden, Tensor pooled, Tensor? embeds, int batch, int tokens)
    {
        (LastHiddenState, PoolerOutput, ImageEmbeds, Batch, Tokens) = (lastHidden, pooled, embeds, batch, tokens);
    }

    /// <summary>The encoder output before post-LN, [B·T, W] (HF <c>last_hidden_state</c> [B, T, W]).</summary>
    public Tensor LastHiddenState { get; }

    /// <summary><c>post_layernorm</c> of the class token, [B, W] (HF <c>pooler_output</c>).</summary>
    public Tensor PoolerOutput { get; }

    /// <summary><c>visual_projection</c> of the pooled output, [B, E], unnormalised; null without a projection.</summary>
    public Tensor? ImageEmbeds { get; }

    /// <summary>Images B.</summary>
    public int Batch { get; }

    /// <summary>Tokens per image T (class token + patches).</summary>
    public int Tokens { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        LastHiddenState.Dispose();
        PoolerOutput.Dispose();
        ImageEmbeds?.Dispose();
    }
}

/// <summary>
/// The CLIP ViT image encoder (HF <c>CLIPVisionModel</c> / <c>CLIPVisionModelWithProjection</c>,
/// open_clip <c>VisionTransformer</c>) for inference: a <see cref="ClipVisionTower"/> loaded from a
/// checkpoint, run on the backend with one reused workspace.
/// </summary>
public sealed class ClipVisionModel : IDisposable
{
    private readonly IBackend _backend;
    private readonly ClipVisionTower _tower;
    private readonly Tensor _positions;     // [T, W], row 0 holds class_embedding + position 0

    private ClipVisionModel(IBackend backend, ClipWeightLayout layout, ClipVisionTower tower, Tensor positions)
    {
        (_backend, Layout, _tower, _positions) = (backend, layout, tower, positions);
    }

    /// <summary>The hyper-parameters in use.</summary>
    public ClipVisionConfig Config => _tower.Config;

    /// <summary>The naming scheme the weights were read from.</summary>
    public ClipWeightLayout Layout { get; }

    /// <summary>True when the checkpoint has a <c>visual_projection</c> (or open_clip <c>proj</c>).</summary>
    public bool HasProjection => _tower.Projection is not null;

    /// <summary>Width of the features used for classification: E with a projection, else W.</summary>
    public int FeatureDim => _tower.Projection?.Rows ?? Config.HiddenSize;

    /// <summary>
    /// Loads the vision tower from <paramref name="source"/>. The config comes from
    /// <paramref name="config"/>, else the directory's <c>config.json</c>, else it is inferred from the
    /// tensor shapes (head size 64, quick_gelu, eps 1e-5, as OpenAI CLIP). HF and open_clip names are
    /// found under any prefix (<c>vision_model.</c>, <c>visual.</c>, <c>model.visual.</c>, ...).
    /// </summary>
    public static ClipVisionModel Load(ModelSource source, IBackend backend, ClipVisionConfig? config = null)
    {
        var names = ClipNames.Detect(source);
        config ??= source.ConfigJsonPath is { } cp ? ClipVisionConfig.Load(cp) : names.Infer(source);
        var c = config;
        c.Validate(P(source.Path));
        var r = new WeightReader(source, backend);
        int w = c.HiddenSize, p = c.PatchSize, t = c.Tokens;
        var loaded = new List<IDisposable>();
        try
        {
            var patch = backend.FromHost(r.Read(names.PatchWeight, w, c.NumChannels, p, p), w, c.NumChannels * p * p);
            loaded.Add(patch);
            float[] cls = r.Read(names.ClassEmbedding, w);
            float[] pos = r.Read(names.Positions, t, w);
            for (int i = 0; i < w; i++) pos[i] = cls[i] + pos[i];
            var positions = backend.FromHost(pos, t, w);
            loaded.Add(positions);
            var pre = Norm.Load(r, names.PreNorm, w, c.LayerNormEps);
            loaded.Add(pre);
            var blocks = new ClipVisionBlock[c.NumHiddenLayers];
            for (int l = 0; l < blocks.Length; l++)
            {
                blocks[l] = names.LoadBlock(r, l, c, (ln1, attn, ln2, fc1, fc2) => new ClipVisionBlock(ln1, attn, ln2, fc1, fc2));
                loaded.Add(blocks[l]);
            }
            if (names.HasExtraLayer(source, c.NumHiddenLayers))
                throw new BadInputException($"{P(source.Path)}: checkpoint has more than num_hidden_layers = {c.NumHiddenLayers} encoder layers");
            var post = Norm.Load(r, names.PostNorm, w, c.LayerNormEps);
            loaded.Add(post);
            var proj = names.LoadProjection(r, w);
            return new ClipVisionModel(backend, names.Layout, new ClipVisionTower(c, patch, pre, blocks, post, proj), positions);
        }
        catch
        {
            foreach (var d in loaded) d.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A model of the given shape with N(0, 0.02²) weights, zero biases and unit LayerNorms, drawn on
    /// the backend (benchmarks; no checkpoint needed).
    /// </summary>
    internal static ClipVisionModel Random(ClipVisionConfig c, IBackend backend, ulong seed)
    {
        ulong stream = 0;
        Tensor Normal(params int[] shape)
        {
            var t = backend.Empty(shape);
            backend.FillNormal(t, seed, stream++);
            backend.Scale(t, 0.02f, t);
            return t;
        }
        Tensor Const(float v, params int[] shape)
        {
            var t = backend.Empty(shape);
            backend.Fill(t, v);
            return t;
        }
        Norm LayerNorm() => new(Const(1f, c.HiddenSize), Const(0f, c.HiddenSize), (float)c.LayerNormEps);
        Linear Dense(int o, int i) => new(Normal(o, i), Const(0f, o));
        int w = c.HiddenSize;
        var blocks = new ClipVisionBlock[c.NumHiddenLayers];
        for (int l = 0; l < blocks.Length; l++)
            blocks[l] = new ClipVisionBlock(LayerNorm(), new SelfAttention(Dense(w, w), Dense(w, w), Dense(w, w), Dense(w, w), c.NumAttentionHeads),
                LayerNorm(), Dense(c.IntermediateSize, w), Dense(w, c.IntermediateSize));
        var tower = new ClipVisionTower(c, Normal(w, c.NumChannels * c.PatchSize * c.PatchSize), LayerNorm(), blocks, LayerNorm(), Normal(c.ProjectionDim, w));
        return new ClipVisionModel(backend, ClipWeightLayout.HuggingFace, tower, Normal(c.Tokens, w));
    }

    /// <summary>
    /// Runs the tower on normalised <paramref name="pixelValues"/> [B, C, S, S] (S = image_size) on
    /// the model's backend.
    /// </summary>
    public ClipVisionOutput Forward(Tensor pixelValues)
    {
        var be = _backend;
        var c = Config;
        int b = _tower.BatchOf(pixelValues), t = c.Tokens, w = c.HiddenSize;
        var h = be.Empty(b * t, w);
        Tensor? pooled = null, embeds = null;
        try
        {
            pooled = be.Empty(b, w);
            if (_tower.Projection is not null) embeds = be.Empty(b, _tower.Projection.Rows);
            using var patches = be.Empty(b * t, c.NumChannels * c.PatchSize * c.PatchSize);
            using var ws = new EncoderWorkspace(be, b, t, w, c.NumAttentionHeads, c.IntermediateSize);
            _tower.Forward(be, pixelValues, _positions, ClipForwardBuffers.Inference(c.NumHiddenLayers, patches, h, ws, pooled, embeds));
            return new ClipVisionOutput(h, pooled, embeds, b, t);
        }
        catch
        {
            h.Dispose();
            pooled?.Dispose();
            embeds?.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _tower.PatchWeight.Dispose();
        _positions.Dispose();
        _tower.PreNorm.Dispose();
        foreach (var b in _tower.Blocks) b.Dispose();
        _tower.PostNorm.Dispose();
        _tower.Projection?.Dispose();
    }
}
