namespace TaskMerge.Engine.Tests.Models;

/// <summary>
/// An independent float64 forward pass of HF CLIPVisionModelWithProjection and
/// RobertaForSequenceClassification, written from the architecture description
/// (modeling_clip.py / modeling_roberta.py) with plain loops; it shares no code with the engine.
/// </summary>
internal static class Float64Reference
{
    public static double Erf(double x)
    {
        // erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)): positive terms, no cancellation.
        double a = Math.Abs(x);
        if (a > 6) return Math.Sign(x);
        double term = a, sum = a;
        for (int n = 1; n < 500; n++)
        {
            term *= 2 * a * a / (2 * n + 1);
            sum += term;
            if (term < sum * 1e-17) break;
        }
        double r = 2 / Math.Sqrt(Math.PI) * Math.Exp(-a * a) * sum;
        return x < 0 ? -r : r;
    }

    public static double Act(string act, double x) => act switch
    {
        "gelu" => 0.5 * x * (1 + Erf(x / Math.Sqrt(2))),
        "quick_gelu" => x / (1 + Math.Exp(-1.702 * x)),
        _ => throw new ArgumentException(act),
    };

    public static double[] LayerNorm(double[] x, int width, float[] g, float[] b, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / width; r++)
        {
            double mean = 0, v = 0;
            for (int c = 0; c < width; c++) mean += x[r * width + c];
            mean /= width;
            for (int c = 0; c < width; c++) v += (x[r * width + c] - mean) * (x[r * width + c] - mean);
            v /= width;
            for (int c = 0; c < width; c++) y[r * width + c] = (x[r * width + c] - mean) / Math.Sqrt(v + eps) * g[c] + b[c];
        }
        return y;
    }

    /// <summary>y = x·Wᵀ + b, W [out, in].</summary>
    public static double[] Linear(double[] x, int inF, float[] weight, float[]? bias, int outF)
    {
        int rows = x.Length / inF;
        var y = new double[rows * outF];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double s = bias?[o] ?? 0;
                for (int i = 0; i < inF; i++) s += x[r * inF + i] * weight[o * inF + i];
                y[r * outF + o] = s;
            }
        return y;
    }

    /// <summary>Multi-head self-attention with an optional key mask (1 attend, 0 masked) per (b, t).</summary>
    public static double[] Attention(double[] x, int batch, int seq, int width, int heads, Weights w, string q, string k, string v, string o, int[]? mask)
    {
        var Q = Linear(x, width, w[q + ".weight"], w[q + ".bias"], width);
        var K = Linear(x, width, w[k + ".weight"], w[k + ".bias"], width);
        var V = Linear(x, width, w[v + ".weight"], w[v + ".bias"], width);
        int d = width / heads;
        var ctx = new double[x.Length];
        var p = new double[seq];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < seq; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < seq; j++)
                    {
                        double s = 0;
                        for (int e = 0; e < d; e++) s += Q[(b * seq + i) * width + h * d + e] * K[(b * seq + j) * width + h * d + e];
                        s /= Math.Sqrt(d);
                        if (mask is not null && mask[b * seq + j] == 0) s += float.MinValue;
                        p[j] = s;
                        max = Math.Max(max, s);
                    }
                    double z = 0;
                    for (int j = 0; j < seq; j++) z += p[j] = Math.Exp(p[j] - max);
                    for (int e = 0; e < d; e++)
                    {
                        double s = 0;
                        for (int j = 0; j < seq; j++) s += p[j] / z * V[(b * seq + j) * width + h * d + e];
                        ctx[(b * seq + i) * width + h * d + e] = s;
                    }
                }
        return Linear(ctx, width, w[o + ".weight"], w[o + ".bias"], width);
    }

    private static double[] Add(double[] a, double[] b) => a.Zip(b, (x, y) => x + y).ToArray();

    public sealed record ClipResult(double[] LastHidden, double[] Pooled, double[]? Embeds);

    /// <summary>HF CLIPVisionTransformer.forward + visual_projection for pixels [B, C, S, S].</summary>
    public static ClipResult Clip(Weights w, TinyModels.ClipShape s, float[] pixels, int batch)
    {
        const string v = "vision_model.";
        int W = s.Hidden, T = s.Tokens, P = s.Patch, g = s.Grid, C = s.Channels, S = s.Image;
        var conv = w[v + "embeddings.patch_embedding.weight"];
        var cls = w[v + "embeddings.class_embedding"];
        var pos = w[v + "embeddings.position_embedding.weight"];
        var h = new double[batch * T * W];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < T; t++)
                for (int d = 0; d < W; d++)
                {
                    double e;
                    if (t == 0) e = cls[d];
                    else
                    {
                        int row = (t - 1) / g, col = (t - 1) % g;
                        e = 0;
                        for (int ch = 0; ch < C; ch++)
                            for (int i = 0; i < P; i++)
                                for (int j = 0; j < P; j++)
                                    e += conv[((d * C + ch) * P + i) * P + j] * pixels[((b * C + ch) * S + row * P + i) * S + col * P + j];
                    }
                    h[(b * T + t) * W + d] = e + pos[t * W + d];
                }
        h = LayerNorm(h, W, w[v + "pre_layrnorm.weight"], w[v + "pre_layrnorm.bias"], s.Eps);
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"{v}encoder.layers.{l}.";
            var t1 = LayerNorm(h, W, w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"], s.Eps);
            h = Add(h, Attention(t1, batch, T, W, s.Heads, w, p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj", p + "self_attn.out_proj", null));
            var t2 = LayerNorm(h, W, w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"], s.Eps);
            var m = Linear(t2, W, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"], s.Intermediate).Select(x => Act(s.Act, x)).ToArray();
            h = Add(h, Linear(m, s.Intermediate, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"], W));
        }
        var first = new double[batch * W];
        for (int b = 0; b < batch; b++) Array.Copy(h, b * T * W, first, b * W, W);
        var pooled = LayerNorm(first, W, w[v + "post_layernorm.weight"], w[v + "post_layernorm.bias"], s.Eps);
        double[]? embeds = w.Contains("visual_projection.weight") ? Linear(pooled, W, w["visual_projection.weight"], null, s.Projection) : null;
        return new ClipResult(h, pooled, embeds);
    }

    public sealed record RobertaResult(double[] LastHidden, double[] Logits);

    /// <summary>HF RobertaForSequenceClassification.forward for ids [B, S] with attention mask [B, S].</summary>
    public static RobertaResult Roberta(Weights w, TinyModels.RobertaShape s, int[] ids, int[]? mask, int batch, int seq)
    {
        const string r = "roberta.";
        const int pad = 1;
        int W = s.Hidden;
        var word = w[r + "embeddings.word_embeddings.weight"];
        var posT = w[r + "embeddings.position_embeddings.weight"];
        var type = w[r + "embeddings.token_type_embeddings.weight"];
        var h = new double[batch * seq * W];
        for (int b = 0; b < batch; b++)
        {
            int cum = 0;
            for (int t = 0; t < seq; t++)
            {
                int id = ids[b * seq + t];
                int pos = id != pad ? ++cum + pad : pad; // cumsum(mask)·mask + padding_idx
                for (int d = 0; d < W; d++)
                    h[(b * seq + t) * W + d] = word[id * W + d] + type[d] + posT[pos * W + d];
            }
        }
        h = LayerNorm(h, W, w[r + "embeddings.LayerNorm.weight"], w[r + "embeddings.LayerNorm.bias"], s.Eps);
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"{r}encoder.layer.{l}.";
            var a = Attention(h, batch, seq, W, s.Heads, w, p + "attention.self.query", p + "attention.self.key", p + "attention.self.value", p + "attention.output.dense", mask);
            a = LayerNorm(Add(a, h), W, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], s.Eps);
            var m = Linear(a, W, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"], s.Intermediate).Select(x => Act(s.Act, x)).ToArray();
            var o = Linear(m, s.Intermediate, w[p + "output.dense.weight"], w[p + "output.dense.bias"], W);
            h = LayerNorm(Add(o, a), W, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], s.Eps);
        }
        var first = new double[batch * W];
        for (int b = 0; b < batch; b++) Array.Copy(h, b * seq * W, first, b * W, W);
        var dense = Linear(first, W, w["classifier.dense.weight"], w["classifier.dense.bias"], W).Select(Math.Tanh).ToArray();
        var logits = Linear(dense, W, w["classifier.out_proj.weight"], w["classifier.out_proj.bias"], s.Labels);
        return new RobertaResult(h, logits);
    }

    /// <summary>max |a − b| / max |b|: the relative error measure used by the parity tests.</summary>
    public static double RelErr(float[] actual, double[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            num = Math.Max(num, Math.Abs(actual[i] - expected[i]));
            den = Math.Max(den, Math.Abs(expected[i]));
        }
        return num / den;
    }
}
