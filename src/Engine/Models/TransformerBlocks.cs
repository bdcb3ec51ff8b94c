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
    public void Forward(IBackend be, Tensor x, Tensor y)
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
    public void Forward(IBackend be, Tensor x, Tensor dst) => be.LayerNorm(x, gamma, beta, eps, dst);

    /// <inheritdoc />
    public void Dispose()
    {
        gamma.Dispose();
        beta.Dispose();
    }
}

/// <summary>
/// Scratch tensors of one encoder forward over <c>batch</c> sequences of <c>seq</c> tokens,
/// allocated once and reused by every layer.
/// </summary>
internal sealed class EncoderWorkspace : IDisposable
{
    public EncoderWorkspace(IBackend be, int batch, int seq, int width, int heads, int intermediate)
    {
        int rows = batch * seq, d = width / heads;
        (Batch, Seq, Heads) = (batch, seq, heads);
        Q = be.Empty(rows, width);
        K = be.Empty(rows, width);
        V = be.Empty(rows, width);
        Qh = be.Empty(batch * heads, seq, d);
        Kh = be.Empty(batch * heads, seq, d);
        Vh = be.Empty(batch * heads, seq, d);
        Scores = be.Empty(batch * heads, seq, seq);
        Tmp = be.Empty(rows, width);
        Tmp2 = be.Empty(rows, width);
        Mlp = be.Empty(rows, intermediate);
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
    public Tensor Tmp { get; }
    public Tensor Tmp2 { get; }
    public Tensor Mlp { get; }

    public void Dispose()
    {
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
    public void Forward(IBackend be, Tensor x, Tensor? maskBias, EncoderWorkspace ws, Tensor output)
    {
        q.Forward(be, x, ws.Q);
        k.Forward(be, x, ws.K);
        v.Forward(be, x, ws.V);
        be.SplitHeads(ws.Q, ws.Qh, heads);
        be.SplitHeads(ws.K, ws.Kh, heads);
        be.SplitHeads(ws.V, ws.Vh, heads);
        int d = ws.Qh.Shape[2];
        be.GemmStridedBatched(ws.Qh, false, ws.Kh, true, ws.Scores);
        be.SoftmaxRows(ws.Scores, ws.Scores, (float)(1.0 / Math.Sqrt(d)), maskBias, heads * ws.Seq);
        be.GemmStridedBatched(ws.Scores, false, ws.Vh, false, ws.Qh);
        be.MergeHeads(ws.Qh, ws.Q, heads);
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
    public static void Apply(IBackend be, Activation act, Tensor x)
    {
        switch (act)
        {
            case Activation.Gelu: be.Gelu(x, x); break;
            case Activation.QuickGelu: be.QuickGelu(x, x); break;
            default: throw new ArgumentOutOfRangeException(nameof(act), act, null);
        }
    }
}
