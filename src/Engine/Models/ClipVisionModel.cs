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
/// open_clip <c>VisionTransformer</c>) written against <see cref="IBackend"/> ops: patch embedding
/// as a GEMM over extracted patches, class token and positions, <c>pre_layrnorm</c>, pre-LN blocks,
/// <c>post_layernorm</c> on the class token, optional bias-free projection.
/// </summary>
public sealed class ClipVisionModel : IDisposable
{
    private sealed class Block(Norm ln1, SelfAttention attn, Norm ln2, Linear fc1, Linear fc2) : IDisposable
    {
        public Norm Ln1 { get; } = ln1;
        public SelfAttention Attn { get; } = attn;
        public Norm Ln2 { get; } = ln2;
        public Linear Fc1 { get; } = fc1;
        public Linear Fc2 { get; } = fc2;

        public void Dispose()
        {
            Attn.Dispose();
            Fc1.Dispose();
            Fc2.Dispose();
            Ln1.Dispose();
            Ln2.Dispose();
        }
    }

    private readonly IBackend _backend;
    private readonly Tensor _patchWeight;   // [W, C·P·P]
    private readonly Tensor _positions;     // [T, W], row 0 holds class_embedding + position 0
    private readonly Norm _preNorm, _postNorm;
    private readonly Block[] _blocks;
    private readonly Tensor? _projection;   // [E, W]

    private ClipVisionModel(IBackend backend, ClipVisionConfig config, ClipWeightLayout layout, Tensor patchWeight, Tensor positions,
        Norm pre, Block[] blocks, Norm post, Tensor? projection)
    {
        (_backend, Config, Layout, _patchWeight, _positions, _preNorm, _blocks, _postNorm, _projection) =
            (backend, config, layout, patchWeight, positions, pre, blocks, post, projection);
    }

    /// <summary>The hyper-parameters in use.</summary>
    public ClipVisionConfig Config { get; }

    /// <summary>The naming scheme the weights were read from.</summary>
    public ClipWeightLayout Layout { get; }

    /// <summary>True when the checkpoint has a <c>visual_projection</c> (or open_clip <c>proj</c>).</summary>
    public bool HasProjection => _projection is not null;

    /// <summary>Width of the features used for classification: E with a projection, else W.</summary>
    public int FeatureDim => _projection?.Rows ?? Config.HiddenSize;

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
            var blocks = new Block[c.NumHiddenLayers];
            for (int l = 0; l < blocks.Length; l++)
            {
                blocks[l] = names.LoadBlock(r, l, c, (ln1, attn, ln2, fc1, fc2) => new Block(ln1, attn, ln2, fc1, fc2));
                loaded.Add(blocks[l]);
            }
            if (names.HasExtraLayer(source, c.NumHiddenLayers))
                throw new BadInputException($"{P(source.Path)}: checkpoint has more than num_hidden_layers = {c.NumHiddenLayers} encoder layers");
            var post = Norm.Load(r, names.PostNorm, w, c.LayerNormEps);
            loaded.Add(post);
            var proj = names.LoadProjection(r, w);
            return new ClipVisionModel(backend, c, names.Layout, patch, positions, pre, blocks, post, proj);
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
        var blocks = new Block[c.NumHiddenLayers];
        for (int l = 0; l < blocks.Length; l++)
            blocks[l] = new Block(LayerNorm(), new SelfAttention(Dense(w, w), Dense(w, w), Dense(w, w), Dense(w, w), c.NumAttentionHeads),
                LayerNorm(), Dense(c.IntermediateSize, w), Dense(w, c.IntermediateSize));
        return new ClipVisionModel(backend, c, ClipWeightLayout.HuggingFace, Normal(w, c.NumChannels * c.PatchSize * c.PatchSize),
            Normal(c.Tokens, w), LayerNorm(), blocks, LayerNorm(), Normal(c.ProjectionDim, w));
    }

    /// <summary>
    /// Runs the tower on normalised <paramref name="pixelValues"/> [B, C, S, S] (S = image_size) on
    /// the model's backend.
    /// </summary>
    public ClipVisionOutput Forward(Tensor pixelValues)
    {
        var be = _backend;
        var c = Config;
        if (pixelValues.Rank != 4 || pixelValues.Shape[1] != c.NumChannels || pixelValues.Shape[2] != c.ImageSize || pixelValues.Shape[3] != c.ImageSize)
            throw new BadInputException(
                $"pixel_values has shape [{string.Join(", ", pixelValues.Shape.ToArray())}], expected [B, {c.NumChannels}, {c.ImageSize}, {c.ImageSize}]");
        int b = pixelValues.Shape[0], t = c.Tokens, w = c.HiddenSize;
        var h = be.Empty(b * t, w);
        Tensor? pooled = null, embeds = null;
        try
        {
            using (var patches = be.Empty(b * t, c.NumChannels * c.PatchSize * c.PatchSize))
            {
                be.Patchify(pixelValues, c.PatchSize, 1, patches);
                be.Gemm(patches, false, _patchWeight, true, h);
            }
            be.AddRowVector(h, _positions, h);
            _preNorm.Forward(be, h, h);
            using (var ws = new EncoderWorkspace(be, b, t, w, c.NumAttentionHeads, c.IntermediateSize))
            {
                foreach (var blk in _blocks)
                {
                    blk.Ln1.Forward(be, h, ws.Tmp);
                    blk.Attn.Forward(be, ws.Tmp, null, ws, ws.Tmp2);
                    be.Add(h, ws.Tmp2, h);
                    blk.Ln2.Forward(be, h, ws.Tmp);
                    blk.Fc1.Forward(be, ws.Tmp, ws.Mlp);
                    Activations.Apply(be, c.HiddenAct, ws.Mlp);
                    blk.Fc2.Forward(be, ws.Mlp, ws.Tmp2);
                    be.Add(h, ws.Tmp2, h);
                }
            }
            pooled = be.Empty(b, w);
            var clsRows = new int[b];
            for (int i = 0; i < b; i++) clsRows[i] = i * t;
            be.GatherRows(h, clsRows, pooled);
            _postNorm.Forward(be, pooled, pooled);
            if (_projection is not null)
            {
                embeds = be.Empty(b, _projection.Rows);
                be.Gemm(pooled, false, _projection, true, embeds);
            }
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
        _patchWeight.Dispose();
        _positions.Dispose();
        _preNorm.Dispose();
        foreach (var b in _blocks) b.Dispose();
        _postNorm.Dispose();
        _projection?.Dispose();
    }
}
