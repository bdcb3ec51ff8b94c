using static TaskMerge.Engine.Models.ClipVisionBackward;

namespace TaskMerge.Engine.Models;

/// <summary>
/// Activations of one <see cref="ClipVisionTraining.Forward"/> kept for the backward pass, and the
/// resulting <see cref="Embeds"/> [B, E].
/// </summary>
internal sealed class ClipVisionActivations
{
    internal sealed class Layer
    {
        public required float[] Input, Ln1, Mean1, Rstd1, Q, K, V, Probs, Ctx, Mid, Ln2, Mean2, Rstd2, Fc1, Act;
    }

    public required int Batch { get; init; }
    public required float[] Patches { get; init; }   // [B·(T−1), C·P·P]
    public required float[] Embedded { get; init; }  // [B·T, W] before ln_pre
    public required float[] PreMean { get; init; }
    public required float[] PreRstd { get; init; }
    public required Layer[] Layers { get; init; }
    public required float[] Cls { get; init; }       // [B, W] residual stream at the class tokens
    public required float[] PostMean { get; init; }
    public required float[] PostRstd { get; init; }
    public required float[] Pooled { get; init; }    // [B, W] post_layernorm output
    public required float[] Embeds { get; init; }    // [B, E] unnormalised image_embeds
}

/// <summary>
/// The CLIP vision tower (HF CLIPVisionModelWithProjection, projection required) as host float32
/// parameters with a forward that keeps activations and a full backward to every weight: the
/// student side of RI. Parameters and gradients are keyed by HF names (<see cref="ParameterShapes"/>).
/// CPU only (<see cref="ClipVisionBackward"/> ops, packed SGEMM).
/// </summary>
internal sealed class ClipVisionTraining
{
    private const string V = "vision_model.";
    public const string PatchWeight = V + "embeddings.patch_embedding.weight";
    public const string ClassEmbedding = V + "embeddings.class_embedding";
    public const string Positions = V + "embeddings.position_embedding.weight";
    public const string PreNorm = V + "pre_layrnorm";
    public const string PostNorm = V + "post_layernorm";
    public const string Projection = "visual_projection.weight";

    private readonly int _threads;
    private readonly Dictionary<string, float[]> _p;

    /// <summary>Wraps <paramref name="parameters"/> (HF names; the arrays are used in place, not copied).</summary>
    public ClipVisionTraining(ClipVisionConfig config, IReadOnlyDictionary<string, float[]> parameters, int threads = 1)
    {
        Config = config;
        _threads = Math.Max(1, threads);
        _p = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (name, shape) in ParameterShapes(config))
        {
            if (!parameters.TryGetValue(name, out var a)) throw new ArgumentException($"missing parameter {name}");
            long len = shape.Aggregate(1L, (x, y) => x * y);
            if (a.Length != len) throw new ArgumentException($"parameter {name} has {a.Length} values, expected {len}");
            _p[name] = a;
        }
    }

    /// <summary>The hyper-parameters.</summary>
    public ClipVisionConfig Config { get; }

    /// <summary>The parameter arrays by HF name (live: an optimizer updates them in place).</summary>
    public IReadOnlyDictionary<string, float[]> Parameters => _p;

    private static string Layer(int l) => $"{V}encoder.layers.{l}.";

    /// <summary>Every trainable tensor of the tower with its HF name and shape, in checkpoint order.</summary>
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

    /// <summary>Zero-filled gradient arrays for every parameter.</summary>
    public Dictionary<string, float[]> ZeroGradients() =>
        _p.ToDictionary(kv => kv.Key, kv => new float[kv.Value.Length], StringComparer.Ordinal);

    /// <summary>Zeroed first and second Adam moments for every parameter.</summary>
    public (Dictionary<string, float[]> M, Dictionary<string, float[]> V) NewAdamState() => (ZeroGradients(), ZeroGradients());

    /// <summary>
    /// One torch-order Adam/AdamW step (<see cref="Optim.AdamStep"/>; AdamW with
    /// <c>Decoupled = true</c>) on every parameter, in place; <paramref name="step"/> is 1-based.
    /// </summary>
    public void OptimizerStep(Dictionary<string, float[]> grads, (Dictionary<string, float[]> M, Dictionary<string, float[]> V) state, int step,
        Optim.AdamSettings settings)
    {
        foreach (var (name, p) in _p) Optim.AdamStep.Apply(p, grads[name], state.M[name], state.V[name], step, settings);
    }

    /// <summary>
    /// Runs the tower on normalised pixels [B, C, S, S] (flattened), keeping what the backward needs;
    /// the image embeddings are <see cref="ClipVisionActivations.Embeds"/>.
    /// </summary>
    public ClipVisionActivations Forward(float[] pixels, int batch)
    {
        var c = Config;
        int w = c.HiddenSize, t = c.Tokens, np = t - 1, pch = c.PatchSize, ch = c.NumChannels, s = c.ImageSize, g = c.Grid;
        int k = ch * pch * pch, n = batch * t, inter = c.IntermediateSize, heads = c.NumAttentionHeads, e = c.ProjectionDim;
        float eps = (float)c.LayerNormEps;
        if (pixels.Length != (long)batch * ch * s * s) throw new ArgumentException($"pixels has {pixels.Length} values, expected B·C·S·S = {batch * ch * s * s}");

        // Patch embedding: im2col (channel, ky, kx) rows, then one GEMM with the conv weight [W, C·P·P].
        var patches = new float[batch * np * k];
        ForRows(batch * np, _threads, row =>
        {
            int img = row / np, p = row % np, gy = p / g, gx = p % g, col = 0;
            for (int cc = 0; cc < ch; cc++)
                for (int ky = 0; ky < pch; ky++, col += pch)
                    pixels.AsSpan(((img * ch + cc) * s + gy * pch + ky) * s + gx * pch, pch).CopyTo(patches.AsSpan(row * k + col, pch));
        });
        var pe = new float[batch * np * w];
        LinearForward(patches, batch * np, k, _p[PatchWeight], null, w, pe, _threads);
        var embedded = new float[n * w];
        float[] cls = _p[ClassEmbedding], pos = _p[Positions];
        for (int b = 0; b < batch; b++)
            for (int tt = 0; tt < t; tt++)
            {
                var dst = embedded.AsSpan((b * t + tt) * w, w);
                var src = tt == 0 ? cls : pe.AsSpan((b * np + tt - 1) * w, w);
                System.Numerics.Tensors.TensorPrimitives.Add(src, pos.AsSpan(tt * w, w), dst);
            }
        float[] preMean = new float[n], preRstd = new float[n], h = new float[n * w];
        LayerNormForward(embedded, n, w, _p[PreNorm + ".weight"], _p[PreNorm + ".bias"], eps, h, preMean, preRstd, _threads);

        var layers = new ClipVisionActivations.Layer[c.NumHiddenLayers];
        for (int l = 0; l < layers.Length; l++)
        {
            string p = Layer(l);
            var a = new ClipVisionActivations.Layer
            {
                Input = h, Ln1 = new float[n * w], Mean1 = new float[n], Rstd1 = new float[n],
                Q = new float[n * w], K = new float[n * w], V = new float[n * w], Probs = new float[batch * heads * t * t], Ctx = new float[n * w],
                Mid = new float[n * w], Ln2 = new float[n * w], Mean2 = new float[n], Rstd2 = new float[n],
                Fc1 = new float[n * inter], Act = new float[n * inter],
            };
            LayerNormForward(h, n, w, _p[p + "layer_norm1.weight"], _p[p + "layer_norm1.bias"], eps, a.Ln1, a.Mean1, a.Rstd1, _threads);
            LinearForward(a.Ln1, n, w, _p[p + "self_attn.q_proj.weight"], _p[p + "self_attn.q_proj.bias"], w, a.Q, _threads);
            LinearForward(a.Ln1, n, w, _p[p + "self_attn.k_proj.weight"], _p[p + "self_attn.k_proj.bias"], w, a.K, _threads);
            LinearForward(a.Ln1, n, w, _p[p + "self_attn.v_proj.weight"], _p[p + "self_attn.v_proj.bias"], w, a.V, _threads);
            AttentionForward(a.Q, a.K, a.V, batch, t, heads, c.HeadDim, a.Probs, a.Ctx, _threads);
            LinearForward(a.Ctx, n, w, _p[p + "self_attn.out_proj.weight"], _p[p + "self_attn.out_proj.bias"], w, a.Mid, _threads);
            System.Numerics.Tensors.TensorPrimitives.Add(a.Mid, h, a.Mid);
            LayerNormForward(a.Mid, n, w, _p[p + "layer_norm2.weight"], _p[p + "layer_norm2.bias"], eps, a.Ln2, a.Mean2, a.Rstd2, _threads);
            LinearForward(a.Ln2, n, w, _p[p + "mlp.fc1.weight"], _p[p + "mlp.fc1.bias"], inter, a.Fc1, _threads);
            ActivationForward(c.HiddenAct, a.Fc1, a.Act, _threads);
            var next = new float[n * w];
            LinearForward(a.Act, n, inter, _p[p + "mlp.fc2.weight"], _p[p + "mlp.fc2.bias"], w, next, _threads);
            System.Numerics.Tensors.TensorPrimitives.Add(next, a.Mid, next);
            layers[l] = a;
            h = next;
        }

        var clsRows = new float[batch * w];
        for (int b = 0; b < batch; b++) h.AsSpan(b * t * w, w).CopyTo(clsRows.AsSpan(b * w, w));
        float[] postMean = new float[batch], postRstd = new float[batch], pooled = new float[batch * w], embeds = new float[batch * e];
        LayerNormForward(clsRows, batch, w, _p[PostNorm + ".weight"], _p[PostNorm + ".bias"], eps, pooled, postMean, postRstd, _threads);
        LinearForward(pooled, batch, w, _p[Projection], null, e, embeds, _threads);
        return new ClipVisionActivations
        {
            Batch = batch, Patches = patches, Embedded = embedded, PreMean = preMean, PreRstd = preRstd, Layers = layers,
            Cls = clsRows, PostMean = postMean, PostRstd = postRstd, Pooled = pooled, Embeds = embeds,
        };
    }

    /// <summary>
    /// Back-propagates <paramref name="dEmbeds"/> = ∂L/∂image_embeds [B, E] through the tower and ADDS
    /// ∂L/∂θ into <paramref name="grads"/> (from <see cref="ZeroGradients"/>; accumulating over calls
    /// sums micro-batches).
    /// </summary>
    public void Backward(ClipVisionActivations act, float[] dEmbeds, Dictionary<string, float[]> grads)
    {
        var c = Config;
        int batch = act.Batch, w = c.HiddenSize, t = c.Tokens, np = t - 1, n = batch * t, inter = c.IntermediateSize;
        int k = c.NumChannels * c.PatchSize * c.PatchSize, heads = c.NumAttentionHeads, e = c.ProjectionDim;
        if (dEmbeds.Length != batch * e) throw new ArgumentException($"dEmbeds has {dEmbeds.Length} values, expected B·E = {batch * e}");

        // Projection and post-LN on the class tokens.
        var dPooled = new float[batch * w];
        LinearBackward(dEmbeds, act.Pooled, _p[Projection], batch, w, e, dPooled, false, grads[Projection], null, _threads);
        var dCls = new float[batch * w];
        LayerNormBackward(dPooled, act.Cls, act.PostMean, act.PostRstd, _p[PostNorm + ".weight"], batch, w, dCls,
            grads[PostNorm + ".weight"], grads[PostNorm + ".bias"], _threads);
        var dh = new float[n * w];
        for (int b = 0; b < batch; b++) dCls.AsSpan(b * w, w).CopyTo(dh.AsSpan(b * t * w, w));

        var dAct = new float[n * inter];
        var dTmp = new float[n * w];
        var dQ = new float[n * w];
        var dK = new float[n * w];
        var dV = new float[n * w];
        for (int l = c.NumHiddenLayers - 1; l >= 0; l--)
        {
            string p = Layer(l);
            var a = act.Layers[l];
            // next = mid + fc2(act(fc1(ln2(mid)))): dMid starts as dh (the residual), dh is reused for it.
            LinearBackward(dh, a.Act, _p[p + "mlp.fc2.weight"], n, inter, w, dAct, false, grads[p + "mlp.fc2.weight"], grads[p + "mlp.fc2.bias"], _threads);
            ActivationBackward(c.HiddenAct, a.Fc1, dAct, dAct, _threads);
            LinearBackward(dAct, a.Ln2, _p[p + "mlp.fc1.weight"], n, w, inter, dTmp, false, grads[p + "mlp.fc1.weight"], grads[p + "mlp.fc1.bias"], _threads);
            LayerNormBackward(dTmp, a.Mid, a.Mean2, a.Rstd2, _p[p + "layer_norm2.weight"], n, w, dh,
                grads[p + "layer_norm2.weight"], grads[p + "layer_norm2.bias"], _threads);
            // mid = input + out_proj(attention(ln1(input))): dInput starts as dMid (dh again).
            LinearBackward(dh, a.Ctx, _p[p + "self_attn.out_proj.weight"], n, w, w, dTmp, false,
                grads[p + "self_attn.out_proj.weight"], grads[p + "self_attn.out_proj.bias"], _threads);
            Array.Clear(dQ);
            Array.Clear(dK);
            Array.Clear(dV);
            AttentionBackward(dTmp, a.Q, a.K, a.V, a.Probs, batch, t, heads, c.HeadDim, dQ, dK, dV, _threads);
            LinearBackward(dQ, a.Ln1, _p[p + "self_attn.q_proj.weight"], n, w, w, dTmp, false, grads[p + "self_attn.q_proj.weight"], grads[p + "self_attn.q_proj.bias"], _threads);
            LinearBackward(dK, a.Ln1, _p[p + "self_attn.k_proj.weight"], n, w, w, dTmp, true, grads[p + "self_attn.k_proj.weight"], grads[p + "self_attn.k_proj.bias"], _threads);
            LinearBackward(dV, a.Ln1, _p[p + "self_attn.v_proj.weight"], n, w, w, dTmp, true, grads[p + "self_attn.v_proj.weight"], grads[p + "self_attn.v_proj.bias"], _threads);
            LayerNormBackward(dTmp, a.Input, a.Mean1, a.Rstd1, _p[p + "layer_norm1.weight"], n, w, dh,
                grads[p + "layer_norm1.weight"], grads[p + "layer_norm1.bias"], _threads);
        }

        // ln_pre, then class/position embeddings and the patch GEMM.
        var dEmb = new float[n * w];
        LayerNormBackward(dh, act.Embedded, act.PreMean, act.PreRstd, _p[PreNorm + ".weight"], n, w, dEmb,
            grads[PreNorm + ".weight"], grads[PreNorm + ".bias"], _threads);
        float[] dPos = grads[Positions], dClsEmb = grads[ClassEmbedding];
        var dPe = new float[batch * np * w];
        for (int b = 0; b < batch; b++)
            for (int tt = 0; tt < t; tt++)
            {
                var src = dEmb.AsSpan((b * t + tt) * w, w);
                var pos = dPos.AsSpan(tt * w, w);
                System.Numerics.Tensors.TensorPrimitives.Add(pos, src, pos);
                if (tt == 0) System.Numerics.Tensors.TensorPrimitives.Add(dClsEmb, src, dClsEmb);
                else src.CopyTo(dPe.AsSpan((b * np + tt - 1) * w, w));
            }
        LinearBackward(dPe, act.Patches, _p[PatchWeight], batch * np, k, w, null, false, grads[PatchWeight], null, _threads);
    }
}
