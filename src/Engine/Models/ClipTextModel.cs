using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Models;

/// <summary>Outputs of <see cref="ClipTextModel.Forward"/>; the caller disposes them.</summary>
public sealed class ClipTextOutput : IDisposable
{
    internal ClipTextOutput(Tensor lastHidden, Tensor pooled, Tensor? embeds, int batch, int tokens)
    {
        (LastHiddenState, PoolerOutput, TextEmbeds, Batch, Tokens) = (lastHidden, pooled, embeds, batch, tokens);
    }

    /// <summary><c>final_layer_norm</c> of the encoder output, [B·T, W] (HF <c>last_hidden_state</c> [B, T, W]).</summary>
    public Tensor LastHiddenState { get; }

    /// <summary>The last hidden state at each sequence's end-of-text position, [B, W] (HF <c>pooler_output</c>).</summary>
    public Tensor PoolerOutput { get; }

    /// <summary><c>text_projection</c> of the pooled output, [B, E], unnormalised; null without a projection.</summary>
    public Tensor? TextEmbeds { get; }

    /// <summary>Sequences B.</summary>
    public int Batch { get; }

    /// <summary>Tokens per sequence T.</summary>
    public int Tokens { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        LastHiddenState.Dispose();
        PoolerOutput.Dispose();
        TextEmbeds?.Dispose();
    }
}

/// <summary>
/// The CLIP text encoder (HF <c>CLIPTextModel</c> / <c>CLIPTextModelWithProjection</c> / the text half
/// of <c>CLIPModel</c>, open_clip's text transformer) for inference: token + position embeddings,
/// pre-LN blocks under the causal mask, <c>final_layer_norm</c>, pooling at the end-of-text token and the
/// bias-free <c>text_projection</c>, on the backend's ops.
/// </summary>
public sealed class ClipTextModel : IDisposable
{
    private readonly IBackend _backend;
    private readonly Tensor _tokens;        // [V, W]
    private readonly Tensor _positions;     // [P, W]
    private readonly ClipVisionBlock[] _blocks;
    private readonly Norm _finalNorm;
    private readonly Tensor? _projection;   // [E, W]

    private ClipTextModel(IBackend backend, ClipTextConfig config, ClipWeightLayout layout, Tensor tokens, Tensor positions,
        ClipVisionBlock[] blocks, Norm finalNorm, Tensor? projection, double? logitScale)
    {
        (_backend, Config, Layout, _tokens, _positions, _blocks, _finalNorm, _projection, LogitScale) =
            (backend, config, layout, tokens, positions, blocks, finalNorm, projection, logitScale);
    }

    /// <summary>The hyper-parameters in use.</summary>
    public ClipTextConfig Config { get; }

    /// <summary>The naming scheme the weights were read from.</summary>
    public ClipWeightLayout Layout { get; }

    /// <summary>True when the checkpoint has a <c>text_projection</c>.</summary>
    public bool HasProjection => _projection is not null;

    /// <summary>Width of the text features: E with a projection, else W.</summary>
    public int FeatureDim => _projection?.Rows ?? Config.HiddenSize;

    /// <summary>The checkpoint's <c>logit_scale</c> (a logarithm: CLIP multiplies cosines by its exp), or null when it has none.</summary>
    public double? LogitScale { get; }

    /// <summary>
    /// Loads the text tower from <paramref name="source"/>. The config comes from
    /// <paramref name="config"/>, else the directory's <c>config.json</c>, else it is inferred from the
    /// tensor shapes (head size 64, quick_gelu, eps 1e-5, argmax pooling, as OpenAI CLIP / open_clip).
    /// HF names (<c>text_model.*</c>, <c>text_projection.weight</c>) and open_clip names
    /// (<c>token_embedding.weight</c>, <c>transformer.resblocks.*</c>, <c>ln_final</c>, <c>text_projection</c>)
    /// are found under any prefix.
    /// </summary>
    public static ClipTextModel Load(ModelSource source, IBackend backend, ClipTextConfig? config = null)
    {
        var names = ClipTextNames.Detect(source);
        config ??= source.ConfigJsonPath is { } cp ? ClipTextConfig.Load(cp) : names.Infer(source);
        var c = config;
        c.Validate(P(source.Path));
        var r = new WeightReader(source, backend);
        int w = c.HiddenSize;
        var loaded = new List<IDisposable>();
        try
        {
            var tokens = Keep(r.Load(names.TokenEmbedding, c.VocabSize, w));
            var positions = Keep(r.Load(names.Positions, c.MaxPositionEmbeddings, w));
            var blocks = new ClipVisionBlock[c.NumHiddenLayers];
            for (int l = 0; l < blocks.Length; l++)
                blocks[l] = Keep(ClipTowerWeights.LoadBlock(r, names.Layout, names.Layer(l), w, c.NumAttentionHeads, c.IntermediateSize, c.LayerNormEps,
                    (ln1, attn, ln2, fc1, fc2) => new ClipVisionBlock(ln1, attn, ln2, fc1, fc2)));
            if (source.Contains(names.Fc1Weight(c.NumHiddenLayers)))
                throw new BadInputException($"{P(source.Path)}: checkpoint has more than num_hidden_layers = {c.NumHiddenLayers} text encoder layers");
            var final = Keep(Norm.Load(r, names.FinalNorm, w, c.LayerNormEps));
            var projection = names.LoadProjection(r, w);
            double? scale = null;
            if (source.TryGet(names.LogitScale, out var s))
            {
                if (s.ElementCount != 1 || !s.DType.IsFloat())
                    throw new BadInputException($"{P(source.Path)}: tensor {Q(s.Name)} has shape {s.ShapeString}, expected a scalar");
                scale = source.ReadFloat32(s.Name)[0];
            }
            return new ClipTextModel(backend, c, names.Layout, tokens, positions, blocks, final, projection, scale);
        }
        catch
        {
            foreach (var d in loaded) d.Dispose();
            throw;
        }

        T Keep<T>(T d) where T : IDisposable
        {
            loaded.Add(d);
            return d;
        }
    }

    /// <summary>
    /// A tower of the given shape with N(0, 0.02²) weights, zero biases and unit LayerNorms, drawn on
    /// the backend, with a projection and logit_scale ln(100) (benchmarks; no checkpoint needed).
    /// </summary>
    internal static ClipTextModel Random(ClipTextConfig c, IBackend backend, ulong seed)
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
        int w = c.HiddenSize;
        Norm LayerNorm() => new(Const(1f, w), Const(0f, w), (float)c.LayerNormEps);
        Linear Dense(int o, int i) => new(Normal(o, i), Const(0f, o));
        var blocks = new ClipVisionBlock[c.NumHiddenLayers];
        for (int l = 0; l < blocks.Length; l++)
            blocks[l] = new ClipVisionBlock(LayerNorm(), new SelfAttention(Dense(w, w), Dense(w, w), Dense(w, w), Dense(w, w), c.NumAttentionHeads),
                LayerNorm(), Dense(c.IntermediateSize, w), Dense(w, c.IntermediateSize));
        return new ClipTextModel(backend, c, ClipWeightLayout.HuggingFace, Normal(c.VocabSize, w), Normal(c.MaxPositionEmbeddings, w),
            blocks, LayerNorm(), Normal(c.ProjectionDim, w), Math.Log(100));
    }

    /// <summary>
    /// The pooling position of one sequence, as transformers' <c>CLIPTextTransformer</c>: with
    /// <c>eos_token_id</c> = 2 the first position of the largest id (CLIP's end-of-text token is the
    /// largest id of its vocabulary), otherwise the first position holding <c>eos_token_id</c>, or 0
    /// when there is none.
    /// </summary>
    public static int PoolPosition(ReadOnlySpan<int> ids, int eosTokenId)
    {
        int best = 0;
        if (eosTokenId == ClipTextConfig.LegacyEosTokenId)
        {
            for (int t = 1; t < ids.Length; t++)
                if (ids[t] > ids[best]) best = t;
            return best;
        }
        for (int t = 0; t < ids.Length; t++)
            if (ids[t] == eosTokenId) return t;
        return 0;
    }

    /// <summary>
    /// Runs the tower on token ids [B, T] (row-major, <paramref name="batch"/> rows, T ≤
    /// <c>max_position_embeddings</c>). There is no padding mask: under the causal mask the pooled
    /// output never sees positions after the end-of-text token, so padding changes only
    /// <see cref="ClipTextOutput.LastHiddenState"/> rows after it.
    /// </summary>
    public ClipTextOutput Forward(ReadOnlySpan<int> ids, int batch)
    {
        var c = Config;
        if (batch < 1 || ids.Length % batch != 0 || ids.Length == 0)
            throw new BadInputException($"input_ids hold {ids.Length} values, not a [B, T] batch of {batch} sequences");
        int t = ids.Length / batch, w = c.HiddenSize, heads = c.NumAttentionHeads;
        if (t > c.MaxPositionEmbeddings)
            throw new BadInputException($"input_ids have {t} tokens per sequence, more than max_position_embeddings = {c.MaxPositionEmbeddings}");
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)c.VocabSize)
                throw new BadInputException($"input_ids[{i / t}, {i % t}] = {ids[i]} is outside the vocabulary of {c.VocabSize} tokens");
        var pool = new int[batch];
        for (int b = 0; b < batch; b++) pool[b] = b * t + PoolPosition(ids.Slice(b * t, t), c.EosTokenId);

        var be = _backend;
        var h = be.Empty(batch * t, w);
        Tensor? pooled = null, embeds = null;
        try
        {
            be.GatherRows(_tokens, ids, h);
            using (var pos = be.Empty(t, w))
            {
                be.GatherRows(_positions, Enumerable.Range(0, t).ToArray(), pos);
                be.AddRowVector(h, pos, h);
            }
            using var ws = new EncoderWorkspace(be, batch, t, w, heads, c.IntermediateSize);
            using var causal = be.FromHost(CausalBias(batch * heads, t), batch * heads * t, t);
            foreach (var blk in _blocks)
            {
                blk.Ln1.Forward(be, h, ws.Tmp);
                blk.Attn.ForwardMasked(be, ws.Tmp, causal, ws, ws.Tmp2);
                be.Add(h, ws.Tmp2, h);
                blk.Ln2.Forward(be, h, ws.Tmp);
                blk.Fc1.Forward(be, ws.Tmp, ws.Mlp);
                Activations.Apply(be, c.HiddenAct, ws.Mlp);
                blk.Fc2.Forward(be, ws.Mlp, ws.Tmp2);
                be.Add(h, ws.Tmp2, h);
            }
            _finalNorm.Forward(be, h, h);
            pooled = be.Empty(batch, w);
            be.GatherRows(h, pool, pooled);
            if (_projection is not null)
            {
                embeds = be.Empty(batch, _projection.Rows);
                be.Gemm(pooled, false, _projection, true, embeds);
            }
            return new ClipTextOutput(h, pooled, embeds, batch, t);
        }
        catch
        {
            h.Dispose();
            pooled?.Dispose();
            embeds?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The additive causal mask for every score row of <paramref name="matrices"/> T×T attention
    /// matrices: query t may attend keys 0..t. Masked entries hold float.MinValue, as transformers'
    /// causal mask does, so they vanish in the softmax without producing ∞ − ∞.
    /// </summary>
    private static float[] CausalBias(int matrices, int t)
    {
        var bias = new float[matrices * t * t];
        for (int r = 0; r < matrices * t; r++)
            for (int j = r % t + 1; j < t; j++) bias[r * t + j] = float.MinValue;
        return bias;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _tokens.Dispose();
        _positions.Dispose();
        foreach (var b in _blocks) b.Dispose();
        _finalNorm.Dispose();
        _projection?.Dispose();
    }
}

/// <summary>
/// Tensor names of a CLIP text tower in either layout, under whatever prefix the checkpoint uses.
/// open_clip's <c>text_projection</c> [W, E] is transposed to HF's <c>text_projection.weight</c> [E, W].
/// </summary>
internal sealed class ClipTextNames
{
    private const string HfTokens = "embeddings.token_embedding.weight";
    private const string OcTokens = "token_embedding.weight";

    private readonly string _prefix;
    private readonly string _outer;

    private ClipTextNames(ClipWeightLayout layout, string prefix, string outer)
    {
        (Layout, _prefix, _outer) = (layout, prefix, outer);
    }

    public ClipWeightLayout Layout { get; }

    private bool Hf => Layout == ClipWeightLayout.HuggingFace;

    public string TokenEmbedding => _prefix + (Hf ? HfTokens : OcTokens);
    public string Positions => _prefix + (Hf ? "embeddings.position_embedding.weight" : "positional_embedding");
    public string FinalNorm => _prefix + (Hf ? "final_layer_norm" : "ln_final");

    /// <summary>HF <c>text_projection.weight</c> [E, W] beside <c>text_model.</c>; open_clip <c>text_projection</c> [W, E].</summary>
    public string Projection => Hf ? _outer + "text_projection.weight" : _prefix + "text_projection";

    public string LogitScale => _outer + "logit_scale";

    /// <summary>The name prefix of text encoder layer <paramref name="l"/>'s tensors.</summary>
    public string Layer(int l) => _prefix + (Hf ? $"encoder.layers.{l}." : $"transformer.resblocks.{l}.");

    /// <summary>True for the tensors the text tower reads (and <c>logit_scale</c>), not the vision tower's.</summary>
    public bool IsTextTensor(string name) =>
        name == Projection || name == LogitScale || (Hf
            ? name.StartsWith(_prefix, StringComparison.Ordinal)
            : name == TokenEmbedding || name == Positions || name.StartsWith(_prefix + "transformer.", StringComparison.Ordinal) || name.StartsWith(FinalNorm + ".", StringComparison.Ordinal));

    public string Fc1Weight(int l) => Layer(l) + (Hf ? "mlp.fc1.weight" : "mlp.c_fc.weight");

    /// <summary>Finds the text tower's names; <see cref="BadInputException"/> when the checkpoint has none.</summary>
    public static ClipTextNames Detect(ModelSource source)
    {
        string? hf = null, oc = null;
        foreach (var t in source.Tensors)
        {
            if (t.Name.EndsWith(HfTokens, StringComparison.Ordinal))
            {
                string p = t.Name[..^HfTokens.Length];
                if (hf is null || p.EndsWith("text_model.", StringComparison.Ordinal)) hf = p;
            }
            else if (t.Name.EndsWith(OcTokens, StringComparison.Ordinal) && source.Contains(t.Name[..^OcTokens.Length] + "ln_final.weight"))
                oc ??= t.Name[..^OcTokens.Length];
        }
        if (hf is not null)
            return new ClipTextNames(ClipWeightLayout.HuggingFace, hf, hf.EndsWith("text_model.", StringComparison.Ordinal) ? hf[..^"text_model.".Length] : hf);
        if (oc is not null) return new ClipTextNames(ClipWeightLayout.OpenClip, oc, oc);
        throw new BadInputException(
            $"{P(source.Path)}: not a CLIP text checkpoint (no text_model.{HfTokens} or {OcTokens} with ln_final tensor)");
    }

    /// <summary>
    /// A config from the tensor shapes, for checkpoints without <c>config.json</c>: head size 64,
    /// quick_gelu, eps 1e-5 and argmax pooling (open_clip pools at <c>text.argmax(dim=-1)</c>).
    /// </summary>
    public ClipTextConfig Infer(ModelSource source)
    {
        long[] tok = source.Get(TokenEmbedding).Shape;
        long[] pos = source.TryGet(Positions, out var p) ? p.Shape : [];
        if (tok.Length != 2 || pos.Length != 2 || pos[1] != tok[1])
            throw new BadInputException($"{P(source.Path)}: {Q(TokenEmbedding)} {TensorInfo.FormatShape(tok)} / {Q(Positions)} {TensorInfo.FormatShape(pos)} are not a token and position table of one width");
        int w = (int)tok[1];
        if (w % 64 != 0)
            throw new BadInputException($"{P(source.Path)}: text width {w} is not a multiple of 64, so the head count cannot be inferred; add a config.json");
        int layers = 0;
        while (source.Contains(Fc1Weight(layers))) layers++;
        int intermediate = layers > 0 ? (int)source.Get(Fc1Weight(0)).Shape[0] : 4 * w;
        int projection = 512;
        if (source.TryGet(Projection, out var proj) && proj.Rank == 2) projection = (int)(Hf ? proj.Shape[0] : proj.Shape[1]);
        return new ClipTextConfig
        {
            VocabSize = (int)tok[0],
            HiddenSize = w,
            MaxPositionEmbeddings = (int)pos[0],
            NumHiddenLayers = layers,
            NumAttentionHeads = w / 64,
            IntermediateSize = intermediate,
            ProjectionDim = projection,
            EosTokenId = ClipTextConfig.LegacyEosTokenId,
        };
    }

    /// <summary>The projection as [E, W] on the backend, or null when the checkpoint has none.</summary>
    public Tensor? LoadProjection(WeightReader r, int w) => ClipTowerWeights.LoadProjection(r, Layout, Projection, w);
}
