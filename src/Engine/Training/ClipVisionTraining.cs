using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Training;

/// <summary>
/// What one <see cref="ClipVisionTraining.Forward"/> keeps for the backward pass, and the backward's
/// scratch: one plan per batch size, owned by the model and rewritten by every forward of that size.
/// Kept per layer: the residual stream entering it, the attention heads Q/K/V [B·H, T, D], the
/// probabilities [B·H, T, T], the merged context, the stream after attention and the MLP
/// pre-activation. The LayerNorm outputs and the MLP activation are recomputed by the backward into
/// shared scratch instead of being kept.
/// </summary>
internal sealed class ClipVisionActivations : IDisposable
{
    private readonly List<Tensor> _owned = [];

    internal ClipVisionActivations(IBackend be, ClipVisionConfig c, int batch)
    {
        int t = c.Tokens, w = c.HiddenSize, n = batch * t, inter = c.IntermediateSize, heads = c.NumAttentionHeads, d = c.HeadDim, bh = batch * heads;
        int layers = c.NumHiddenLayers;
        Tensor New(params int[] shape)
        {
            var x = be.Empty(shape);
            _owned.Add(x);
            return x;
        }
        try
        {
            Batch = batch;
            Positions = New(t, w);
            // Shared by the layers: K and V before the head split, the per-head context, the LayerNorm
            // outputs (Tmp), the branch outputs (Tmp2) and the MLP activation (Act). The backward reuses them.
            Tensor k = New(n, w), v = New(n, w), context = New(bh, t, d), tmp2 = New(n, w), act = New(n, inter);
            Tmp = New(n, w);
            Buffers = new ClipForwardBuffers
            {
                Patches = New(n, c.NumChannels * c.PatchSize * c.PatchSize),
                Embedded = New(n, w),
                Residual = [.. Enumerable.Range(0, layers + 1).Select(_ => New(n, w))],
                Attention = [.. Enumerable.Range(0, layers).Select(_ => new EncoderWorkspace(batch, t, heads,
                    New(n, w), k, v, New(bh, t, d), New(bh, t, d), New(bh, t, d), New(bh, t, t), context, Tmp, tmp2, act))],
                Mid = [.. Enumerable.Range(0, layers).Select(_ => New(n, w))],
                Fc1 = [.. Enumerable.Range(0, layers).Select(_ => New(n, inter))],
                Act = [.. Enumerable.Repeat(act, layers)],
                Cls = New(batch, w),
                Pooled = New(batch, w),
                Embeds = New(batch, c.ProjectionDim),
            };
            DResidual = New(n, w);
            DAct = New(n, inter);
            DQh = New(bh, t, d);
            DKh = New(bh, t, d);
            DVh = New(bh, t, d);
            DProbs = New(bh, t, t);
            DPooled = New(batch, w);
            DCls = New(batch, w);
            Ones = New(n);
            be.Fill(Ones, 1f);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Images B of the plan.</summary>
    public int Batch { get; }

    /// <summary>The unnormalised image embeddings [B, E] of the last forward.</summary>
    public Tensor Embeds => Buffers.Embeds!;

    internal ClipForwardBuffers Buffers { get; }

    /// <summary>Position embeddings with the class embedding folded into row 0 [T, W].</summary>
    internal Tensor Positions { get; }

    /// <summary>Scratch [B·T, W] shared by the layers (their LayerNorm outputs); the backward's ∂L/∂embedded at the end.</summary>
    internal Tensor Tmp { get; }

    /// <summary>∂L/∂(residual stream) [B·T, W], carried from the class tokens down through the layers.</summary>
    internal Tensor DResidual { get; }

    /// <summary>∂L/∂(MLP activation), then ∂L/∂(MLP pre-activation) [B·T, I].</summary>
    internal Tensor DAct { get; }

    /// <summary>∂L/∂(context heads), then ∂L/∂Qh [B·H, T, D].</summary>
    internal Tensor DQh { get; }

    /// <summary>∂L/∂Kh [B·H, T, D].</summary>
    internal Tensor DKh { get; }

    /// <summary>∂L/∂Vh [B·H, T, D].</summary>
    internal Tensor DVh { get; }

    /// <summary>∂L/∂P, then ∂L/∂(scores) [B·H, T, T].</summary>
    internal Tensor DProbs { get; }

    /// <summary>∂L/∂pooled [B, W].</summary>
    internal Tensor DPooled { get; }

    /// <summary>∂L/∂(class-token rows) [B, W], before the scatter and again after the final gather.</summary>
    internal Tensor DCls { get; }

    /// <summary>B·T ones: bias gradients are Gemv(dY, transA, ones).</summary>
    internal Tensor Ones { get; }

    /// <summary>The tensors of the forward and backward together, in elements.</summary>
    public long Elements => _owned.Sum(t => t.Length);

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
    }
}

/// <summary>
/// The CLIP vision tower (HF CLIPVisionModelWithProjection, projection required) as trainable
/// float32 parameters on an <see cref="IBackend"/>: the student side of RI, and its frozen teachers.
/// The forward is <see cref="ClipVisionTower.Forward"/>, the one the inference model runs, with
/// every layer's activations kept (<see cref="ClipVisionActivations"/>); the backward is composed
/// from backend ops only (GEMMs, LayerNorm/activation/softmax backward, head split/merge,
/// row gather/scatter, row-vector sums) and AdamW is the backend's fused <see cref="INeuralNetOps.AdamStep"/>.
/// Parameters, gradients and Adam moments are tensors keyed by HF name (<see cref="ParameterShapes"/>);
/// gradients and moments are allocated on first use, so a forward-only teacher holds the parameters alone.
/// </summary>
internal sealed class ClipVisionTraining : IDisposable
{
    private const string V = "vision_model.";
    public const string PatchWeight = V + "embeddings.patch_embedding.weight";
    public const string ClassEmbedding = V + "embeddings.class_embedding";
    public const string Positions = V + "embeddings.position_embedding.weight";
    public const string PreNorm = V + "pre_layrnorm";
    public const string PostNorm = V + "post_layernorm";
    public const string Projection = "visual_projection.weight";

    private readonly IBackend _be;
    private readonly Dictionary<string, Tensor> _p = new(StringComparer.Ordinal);
    private readonly ClipVisionTower _tower;
    private readonly float _eps;
    private Dictionary<string, Tensor>? _grads, _m, _v;
    private ClipVisionActivations? _activations;

    /// <summary>Uploads a copy of <paramref name="parameters"/> (HF names, float32) to <paramref name="backend"/>.</summary>
    public ClipVisionTraining(IBackend backend, ClipVisionConfig config, IReadOnlyDictionary<string, float[]> parameters)
    {
        _be = backend;
        Config = config;
        _eps = (float)config.LayerNormEps;
        try
        {
            foreach (var (name, shape) in ParameterShapes(config))
            {
                if (!parameters.TryGetValue(name, out var a)) throw new ArgumentException($"missing parameter {name}");
                long len = shape.Aggregate(1L, (x, y) => x * y);
                if (a.Length != len) throw new ArgumentException($"parameter {name} has {a.Length} values, expected {len}");
                var t = backend.Empty(name == PatchWeight ? [shape[0], (int)(len / shape[0])] : shape);
                _p[name] = t;
                backend.Upload(a, t);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
        Norm LayerNorm(string name) => new(_p[name + ".weight"], _p[name + ".bias"], _eps);
        Linear Dense(string name) => new(_p[name + ".weight"], _p[name + ".bias"]);
        var blocks = new ClipVisionBlock[config.NumHiddenLayers];
        for (int l = 0; l < blocks.Length; l++)
        {
            string p = Layer(l);
            var attn = new SelfAttention(Dense(p + "self_attn.q_proj"), Dense(p + "self_attn.k_proj"), Dense(p + "self_attn.v_proj"),
                Dense(p + "self_attn.out_proj"), config.NumAttentionHeads);
            blocks[l] = new ClipVisionBlock(LayerNorm(p + "layer_norm1"), attn, LayerNorm(p + "layer_norm2"), Dense(p + "mlp.fc1"), Dense(p + "mlp.fc2"));
        }
        _tower = new ClipVisionTower(config, _p[PatchWeight], LayerNorm(PreNorm), blocks, LayerNorm(PostNorm), _p[Projection]);
    }

    /// <summary>The hyper-parameters.</summary>
    public ClipVisionConfig Config { get; }

    /// <summary>The backend holding the tensors.</summary>
    public IBackend Backend => _be;

    /// <summary>The parameter tensors by HF name (live: <see cref="OptimizerStep"/> updates them in place; the patch weight is [W, C·P·P]).</summary>
    public IReadOnlyDictionary<string, Tensor> Parameters => _p;

    /// <summary>The gradient tensors by HF name, zero-filled on first access.</summary>
    public IReadOnlyDictionary<string, Tensor> Gradients => _grads ??= ZerosLike();

    private static string Layer(int l) => $"{V}encoder.layers.{l}.";

    /// <summary>Every trainable tensor of the tower with its HF name and checkpoint shape, in checkpoint order.</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> ParameterShapes(ClipVisionConfig c)
    {
        int w = c.HiddenSize, i = c.IntermediateSize;
        var list = new List<(string, int[])>
        {
            (ClassEmbedding, [w]),
            (PatchWeight, [w, c.NumChannels, c.PatchSize, c.PatchSize]),
            (Positions, [c.Tokens, w]),
            (PreNorm + ".weight", [w]),
            (PreNorm + ".bias", [w]),
        };
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string p = Layer(l);
            foreach (var n in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
            {
                list.Add((p + $"self_attn.{n}.weight", [w, w]));
                list.Add((p + $"self_attn.{n}.bias", [w]));
            }
            list.Add((p + "layer_norm1.weight", [w]));
            list.Add((p + "layer_norm1.bias", [w]));
            list.Add((p + "mlp.fc1.weight", [i, w]));
            list.Add((p + "mlp.fc1.bias", [i]));
            list.Add((p + "mlp.fc2.weight", [w, i]));
            list.Add((p + "mlp.fc2.bias", [w]));
            list.Add((p + "layer_norm2.weight", [w]));
            list.Add((p + "layer_norm2.bias", [w]));
        }
        list.Add((PostNorm + ".weight", [w]));
        list.Add((PostNorm + ".bias", [w]));
        list.Add((Projection, [c.ProjectionDim, w]));
        return list;
    }

    /// <summary>The parameters downloaded to host arrays by HF name (row-major, checkpoint layout).</summary>
    public Dictionary<string, float[]> ParametersToHost() => ToHost(_p);

    /// <summary>The Adam moments downloaded to host arrays by HF name (zeros before the first <see cref="OptimizerStep"/>).</summary>
    public (Dictionary<string, float[]> M, Dictionary<string, float[]> V) MomentsToHost()
    {
        _m ??= ZerosLike();
        _v ??= ZerosLike();
        return (ToHost(_m), ToHost(_v));
    }

    /// <summary>Overwrites the parameters and both Adam moments from host arrays by HF name (a restored checkpoint).</summary>
    public void Load(IReadOnlyDictionary<string, float[]> parameters, IReadOnlyDictionary<string, float[]> m, IReadOnlyDictionary<string, float[]> v)
    {
        _m ??= ZerosLike();
        _v ??= ZerosLike();
        foreach (var name in _p.Keys)
        {
            _be.Upload(parameters[name], _p[name]);
            _be.Upload(m[name], _m[name]);
            _be.Upload(v[name], _v[name]);
        }
    }

    private static Dictionary<string, float[]> ToHost(Dictionary<string, Tensor> tensors) =>
        tensors.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal);

    /// <summary>Zeroes every gradient (allocating them on first use).</summary>
    public void ZeroGradients()
    {
        foreach (var g in Gradients.Values) _be.Fill(g, 0f);
    }

    /// <summary>
    /// One torch-order Adam/AdamW step (<see cref="INeuralNetOps.AdamStep"/>; AdamW with
    /// <c>Decoupled = true</c>) on every parameter from <see cref="Gradients"/>, in place;
    /// <paramref name="step"/> is 1-based. The moments start at zero on the first call.
    /// </summary>
    public void OptimizerStep(int step, Optim.AdamSettings settings)
    {
        _m ??= ZerosLike();
        _v ??= ZerosLike();
        var grads = Gradients;
        foreach (var (name, p) in _p) _be.AdamStep(p, grads[name], _m[name], _v[name], step, settings);
    }

    private Dictionary<string, Tensor> ZerosLike() =>
        _p.ToDictionary(kv => kv.Key, kv => _be.Zeros(kv.Value.Shape.ToArray()), StringComparer.Ordinal);

    /// <summary>
    /// Writes the position embeddings with the class embedding added to row 0 into <paramref name="dst"/>
    /// [T, W]: the tower's patch rows are zero at the class token, so adding these rows to every
    /// image's tokens places the class embedding.
    /// </summary>
    private void FoldClassIntoPositions(Tensor dst)
    {
        _be.Copy(_p[Positions], dst);
        _be.ScatterAddRows(_p[ClassEmbedding], [0], dst);
    }

    /// <summary>
    /// Runs the tower on normalised pixels [B, C, S, S] (a tensor on <see cref="Backend"/>), keeping
    /// what <see cref="Backward"/> needs; the image embeddings are <see cref="ClipVisionActivations.Embeds"/>.
    /// The returned activations belong to the model and stay valid until the next forward.
    /// </summary>
    public ClipVisionActivations Forward(Tensor pixels)
    {
        int b = _tower.BatchOf(pixels);
        if (_activations?.Batch != b)
        {
            _activations?.Dispose();
            _activations = null;
            _activations = new ClipVisionActivations(_be, Config, b);
        }
        FoldClassIntoPositions(_activations.Positions);
        _tower.Forward(_be, pixels, _activations.Positions, _activations.Buffers);
        return _activations;
    }

    /// <summary>
    /// The image embeddings [B, E] of normalised pixels [B, C, S, S] without keeping activations
    /// (frozen teachers, evaluation); the caller owns the result. The workspace is released after
    /// the call, so teachers run one after the other share it through the backend's buffer pool.
    /// </summary>
    public Tensor Embed(Tensor pixels)
    {
        var c = Config;
        int b = _tower.BatchOf(pixels), t = c.Tokens, w = c.HiddenSize;
        var embeds = _be.Empty(b, c.ProjectionDim);
        try
        {
            using var patches = _be.Empty(b * t, c.NumChannels * c.PatchSize * c.PatchSize);
            using var hidden = _be.Empty(b * t, w);
            using var positions = _be.Empty(t, w);
            using var pooled = _be.Empty(b, w);
            using var ws = new EncoderWorkspace(_be, b, t, w, c.NumAttentionHeads, c.IntermediateSize);
            FoldClassIntoPositions(positions);
            _tower.Forward(_be, pixels, positions, ClipForwardBuffers.Inference(c.NumHiddenLayers, patches, hidden, ws, pooled, embeds));
            return embeds;
        }
        catch
        {
            embeds.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Back-propagates <paramref name="dEmbeds"/> = ∂L/∂image_embeds [B, E] through the forward that
    /// produced <paramref name="act"/> and ADDS ∂L/∂θ into <see cref="Gradients"/> (accumulating over
    /// calls sums micro-batches; <see cref="ZeroGradients"/> starts afresh).
    /// </summary>
    public void Backward(ClipVisionActivations act, Tensor dEmbeds)
    {
        if (!ReferenceEquals(act, _activations)) throw new ArgumentException("activations are not those of this model's last forward");
        var c = Config;
        int batch = act.Batch, e = c.ProjectionDim;
        if (dEmbeds.Rank != 2 || dEmbeds.Rows != batch || dEmbeds.Cols != e)
            throw new ArgumentException($"dEmbeds is {dEmbeds}, expected [{batch}, {e}]");
        var be = _be;
        var g = Gradients;
        var o = act.Buffers;
        var dh = act.DResidual;
        int[] clsRows = _tower.ClassRows(batch);

        // image_embeds = pooled·projᵀ; pooled = post_layernorm(cls); cls = residual rows at the class tokens.
        be.Gemm(dEmbeds, false, _p[Projection], false, act.DPooled);
        be.Gemm(dEmbeds, true, o.Pooled, false, g[Projection], beta: 1f);
        be.Fill(act.DCls, 0f);
        be.LayerNormBackward(act.DPooled, o.Cls, _p[PostNorm + ".weight"], _eps, act.DCls, g[PostNorm + ".weight"], g[PostNorm + ".bias"]);
        be.Fill(dh, 0f);
        be.ScatterAddRows(act.DCls, clsRows, dh);

        for (int l = c.NumHiddenLayers - 1; l >= 0; l--) LayerBackward(act, l, g);

        // Residual[0] = pre_layrnorm(embedded); embedded = patches·Wpᵀ + positions (+ class at row 0).
        var dEmb = act.Tmp;
        be.Fill(dEmb, 0f);
        be.LayerNormBackward(dh, o.Embedded, _p[PreNorm + ".weight"], _eps, dEmb, g[PreNorm + ".weight"], g[PreNorm + ".bias"]);
        be.Gemm(dEmb, true, o.Patches, false, g[PatchWeight], beta: 1f);
        be.AddRowVectorBackward(dEmb, g[Positions]);
        be.GatherRows(dEmb, clsRows, act.DCls);
        be.AddRowVectorBackward(act.DCls, g[ClassEmbedding]);
    }

    /// <summary>
    /// Layer l backward: on entry act.DResidual holds ∂L/∂Residual[l+1], on exit ∂L/∂Residual[l].
    /// ws.Tmp, ws.Tmp2, ws.K, ws.V and the MLP activation, scratch of the forward, are reused.
    /// </summary>
    private void LayerBackward(ClipVisionActivations act, int l, IReadOnlyDictionary<string, Tensor> g)
    {
        var be = _be;
        var c = Config;
        var o = act.Buffers;
        var ws = o.Attention[l];
        var blk = _tower.Blocks[l];
        var dh = act.DResidual;
        string p = Layer(l);
        int heads = c.NumAttentionHeads;

        // output = mid + fc2(act(fc1(ln2(mid)))): recompute ln2(mid) and the activation, then back through the MLP.
        blk.Ln2.Forward(be, o.Mid[l], ws.Tmp);
        Activations.Apply(be, c.HiddenAct, o.Fc1[l], o.Act[l]);
        LinearBackward(dh, o.Act[l], p + "mlp.fc2", act.DAct, g, act.Ones);
        Activations.Backward(be, c.HiddenAct, o.Fc1[l], act.DAct, act.DAct);
        LinearBackward(act.DAct, ws.Tmp, p + "mlp.fc1", ws.Tmp2, g, act.Ones);
        be.LayerNormBackward(ws.Tmp2, o.Mid[l], _p[p + "layer_norm2.weight"], _eps, dh, g[p + "layer_norm2.weight"], g[p + "layer_norm2.bias"]);

        // mid = x + out_proj(context); context = merge(softmax(Qh·Khᵀ/√d)·Vh).
        LinearBackward(dh, ws.Q, p + "self_attn.out_proj", ws.Tmp2, g, act.Ones);
        var dCtx = act.DQh;
        be.SplitHeads(ws.Tmp2, dCtx, heads);
        be.GemmStridedBatched(dCtx, false, ws.Vh, true, act.DProbs);
        be.GemmStridedBatched(ws.Scores, true, dCtx, false, act.DVh);
        be.SoftmaxRowsBackward(ws.Scores, act.DProbs, act.DProbs, (float)(1.0 / Math.Sqrt(c.HeadDim)));
        be.GemmStridedBatched(act.DProbs, false, ws.Kh, false, act.DQh);
        be.GemmStridedBatched(act.DProbs, true, ws.Qh, false, act.DKh);
        be.MergeHeads(act.DQh, ws.Tmp2, heads);
        be.MergeHeads(act.DKh, ws.K, heads);
        be.MergeHeads(act.DVh, ws.V, heads);

        // q, k, v = linear(ln1(x)): recompute ln1(x), take the weight gradients, then sum the input gradients into ws.Tmp.
        blk.Ln1.Forward(be, o.Residual[l], ws.Tmp);
        WeightBackward(ws.Tmp2, ws.Tmp, p + "self_attn.q_proj", g, act.Ones);
        WeightBackward(ws.K, ws.Tmp, p + "self_attn.k_proj", g, act.Ones);
        WeightBackward(ws.V, ws.Tmp, p + "self_attn.v_proj", g, act.Ones);
        be.Gemm(ws.Tmp2, false, _p[p + "self_attn.q_proj.weight"], false, ws.Tmp);
        be.Gemm(ws.K, false, _p[p + "self_attn.k_proj.weight"], false, ws.Tmp, beta: 1f);
        be.Gemm(ws.V, false, _p[p + "self_attn.v_proj.weight"], false, ws.Tmp, beta: 1f);
        be.LayerNormBackward(ws.Tmp, o.Residual[l], _p[p + "layer_norm1.weight"], _eps, dh, g[p + "layer_norm1.weight"], g[p + "layer_norm1.bias"]);
    }

    /// <summary>y = x·Wᵀ + b backward: dx ← dy·W (overwritten), then <see cref="WeightBackward"/>.</summary>
    private void LinearBackward(Tensor dy, Tensor x, string name, Tensor dx, IReadOnlyDictionary<string, Tensor> g, Tensor ones)
    {
        _be.Gemm(dy, false, _p[name + ".weight"], false, dx);
        WeightBackward(dy, x, name, g, ones);
    }

    /// <summary>dW += dyᵀ·x; db += dyᵀ·ones (the column sums of dy).</summary>
    private void WeightBackward(Tensor dy, Tensor x, string name, IReadOnlyDictionary<string, Tensor> g, Tensor ones)
    {
        _be.Gemm(dy, true, x, false, g[name + ".weight"], beta: 1f);
        _be.Gemv(dy, true, ones, g[name + ".bias"], beta: 1f);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _activations?.Dispose();
        _activations = null;
        foreach (var d in new[] { _p, _grads, _m, _v })
            if (d is not null)
                foreach (var t in d.Values) t.Dispose();
    }
}
