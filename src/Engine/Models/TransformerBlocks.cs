using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Models;

/// <summary>A fully connected layer y = x·Wᵀ + b (nn.Linear), W [out, in].</summary>
internal sealed class Linear(Tensor weight, Tensor? bias) : IDisposable
{
    /// <summary>Output features.</summary>
    public int Out => weight.Rows;

    /// <summary>Input features.</summary>
    public int In => weight.Cols;

    /// <summary>Loads <c>{name}.weight</c> [out, in] and, when <paramref name="hasBias"/>, <c>{name}.bias</c> [out].</summary>
    public static Linear Load(WeightReader r, string name, int outFeatures, int inFeatures, bool hasBias = true) =>
        new(r.Load(name + ".weight", outFeatures, inFeatures), hasBias ? r.Load(name + ".bias", outFeatures) : null);

    /// <summary>y ← x·Wᵀ + b for x [rows, in], y [rows, out].</summary>
    public void Forward(INeuralNetOps be, Tensor x, Tensor y)
    {
        be.Gemm(x, false, weight, true, y);
        if (bias is not null) be.AddRowVector(y, bias, y);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        weight.Dispose();
        bias?.Dispose();
    }
}

/// <summary>LayerNorm parameters γ, β and ε.</summary>
internal sealed class Norm(Tensor gamma, Tensor beta, float eps) : IDisposable
{
    /// <summary>Loads <c>{name}.weight</c> and <c>{name}.bias</c>, both [width].</summary>
    public static Norm Load(WeightReader r, string name, int width, double eps) =>
        new(r.Load(name + ".weight", width), r.Load(name + ".bias", width), (float)eps);

    /// <summary>dst ← LayerNorm(x) over rows of the norm's width (dst may be x).</summary>
    public void Forward(INeuralNetOps be, Tensor x, Tensor dst) => be.LayerNorm(x, gamma, beta, eps, dst);

    /// <inheritdoc />
    public void Dispose()
    {
        gamma.Dispose();
        beta.Dispose();
    }
}

/// <summary>
/// Scratch tensors of one encoder forward over <c>batch</c> sequences of <c>seq</c> tokens,
/// allocated once and reused by every layer; or, for training, a per-layer view whose attention
/// tensors are that layer's saved activations.
/// </summary>
internal sealed class EncoderWorkspace : IDisposable
{
    private readonly bool _owns;

    /// <summary>
    /// Allocates every tensor; <see cref="Dispose"/> releases them. The per-head context overwrites
    /// the query heads, which inference no longer needs by then.
    /// </summary>
    public EncoderWorkspace(INeuralNetOps be, int batch, int seq, int width, int heads, int intermediate)
        : this(batch, seq, heads, be.Empty(batch * seq, width), be.Empty(batch * seq, width), be.Empty(batch * seq, width),
            be.Empty(batch * heads, seq, width / heads), be.Empty(batch * heads, seq, width / heads), be.Empty(batch * heads, seq, width / heads),
            be.Empty(batch * heads, seq, seq), context: null, be.Empty(batch * seq, width), be.Empty(batch * seq, width), be.Empty(batch * seq, intermediate), owns: true)
    {
    }

    /// <summary>
    /// A view over tensors owned elsewhere (<see cref="Dispose"/> leaves them alone): Q [B·T, W] ends
    /// holding the merged attention context, Qh/Kh/Vh [B·H, T, D] the heads and Scores [B·H, T, T]
    /// the attention probabilities; the per-head context goes to <paramref name="context"/>
    /// [B·H, T, D] (null: over Qh).
    /// </summary>
    public EncoderWorkspace(int batch, int seq, int heads, Tensor q, Tensor k, Tensor v, Tensor qh, Tensor kh, Tensor vh, Tensor scores,
        Tensor? context, Tensor tmp, Tensor tmp2, Tensor mlp, bool owns = false)
    {
        (Batch, Seq, Heads, _owns) = (batch, seq, heads, owns);
        (Q, K, V, Qh, Kh, Vh, Scores, Context, Tmp, Tmp2, Mlp) = (q, k, v, qh, kh, vh, scores, context ?? qh, tmp, tmp2, mlp);
    }

    public int Batch { get; }
    public int Seq { get; }
    public int Heads { get; }
    public Tensor Q { get; }
    public Tensor K { get; }
    public Tensor V { get; }
    public Tensor Qh { get; }
    public Tensor Kh { get; }
    public Tensor Vh { get; }
    public Tensor Scores { get; }
    public Tensor Context { get; }
    public Tensor Tmp { get; }
    public Tensor Tmp2 { get; }
    public Tensor Mlp { get; }

    public void Dispose()
    {
        if (!_owns) return;
        foreach (var t in new[] { Q, K, V, Qh, Kh, Vh, Scores, Tmp, Tmp2, Mlp }) t.Dispose();
    }
}

/// <summary>Multi-head self-attention with separate q/k/v/out projections (HF CLIPAttention, RobertaSelfAttention + output dense).</summary>
internal sealed class SelfAttention(Linear q, Linear k, Linear v, Linear o, int heads) : IDisposable
{
    /// <summary>
    /// output ← out_proj(softmax(q·kᵀ/√d + mask)·v) for x [B·T, W]; <paramref name="maskBias"/> is an
    /// additive key mask [B, T] or null. Uses the workspace's Q, K, V, per-head and score tensors.
    /// </summary>
    public void Forward(INeuralNetOps be, Tensor x, Tensor? maskBias, EncoderWorkspace ws, Tensor output) =>
        Forward(be, x, maskBias, heads * ws.Seq, ws, output);

    /// <summary>
    /// As <see cref="Forward(INeuralNetOps, Tensor, Tensor?, EncoderWorkspace, Tensor)"/> with an additive
    /// mask per score row: <paramref name="scoreBias"/> [B·H·T, T] (e.g. the causal mask of a text tower).
    /// </summary>
    public void ForwardMasked(INeuralNetOps be, Tensor x, Tensor scoreBias, EncoderWorkspace ws, Tensor output) =>
        Forward(be, x, scoreBias, 1, ws, output);

    private void Forward(INeuralNetOps be, Tensor x, Tensor? bias, int rowsPerBiasRow, EncoderWorkspace ws, Tensor output)
    {
        q.Forward(be, x, ws.Q);
        k.Forward(be, x, ws.K);
        v.Forward(be, x, ws.V);
        be.SplitHeads(ws.Q, ws.Qh, heads);
        be.SplitHeads(ws.K, ws.Kh, heads);
        be.SplitHeads(ws.V, ws.Vh, heads);
        int d = ws.Qh.Shape[2];
        be.GemmStridedBatched(ws.Qh, false, ws.Kh, true, ws.Scores);
        be.SoftmaxRows(ws.Scores, ws.Scores, (float)(1.0 / Math.Sqrt(d)), bias, rowsPerBiasRow);
        be.GemmStridedBatched(ws.Scores, false, ws.Vh, false, ws.Context);
        be.MergeHeads(ws.Context, ws.Q, heads);
        o.Forward(be, ws.Q, output);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        q.Dispose();
        k.Dispose();
        v.Dispose();
        o.Dispose();
    }
}

/// <summary>Applies a config's MLP activation through the backend.</summary>
internal static class Activations
{
    /// <summary>x ← act(x).</summary>
    public static void Apply(INeuralNetOps be, Activation act, Tensor x) => Apply(be, act, x, x);

    /// <summary>dst ← act(x); dst may be x.</summary>
    public static void Apply(INeuralNetOps be, Activation act, Tensor x, Tensor dst)
    {
        switch (act)
        {
            case Activation.Gelu: be.Gelu(x, dst); break;
            case Activation.QuickGelu: be.QuickGelu(x, dst); break;
            default: throw new ArgumentOutOfRangeException(nameof(act), act, null);
        }
    }

    /// <summary>dx ← dy ⊙ act′(x) for the forward's input x; dx may be dy.</summary>
    public static void Backward(INeuralNetOps be, Activation act, Tensor x, Tensor dy, Tensor dx)
    {
        switch (act)
        {
            case Activation.Gelu: be.GeluBackward(x, dy, dx); break;
            case Activation.QuickGelu: be.QuickGeluBackward(x, dy, dx); break;
            default: throw new ArgumentOutOfRangeException(nameof(act), act, null);
        }
    }
}
