using TaskMerge.Engine.Tests.IO;

namespace TaskMerge.Engine.Tests.Models;

/// <summary>Tiny random CLIP text towers (HF and open_clip names) and an independent float64 forward of them.</summary>
internal static class ClipTextTestModels
{
    public sealed record TextShape(int Vocab = 40, int Hidden = 32, int Layers = 2, int Heads = 4, int Intermediate = 64, int Positions = 10,
        int Projection = 16, string Act = "quick_gelu", double Eps = 1e-5, int Bos = 38, int Eos = 39, int EosTokenId = 2)
    {
        public string ConfigJson(bool nested = false)
        {
            string text = $$"""
                "vocab_size": {{Vocab}}, "hidden_size": {{Hidden}}, "intermediate_size": {{Intermediate}}, "num_hidden_layers": {{Layers}},
                "num_attention_heads": {{Heads}}, "max_position_embeddings": {{Positions}}, "hidden_act": "{{Act}}",
                "layer_norm_eps": {{Eps.ToString(System.Globalization.CultureInfo.InvariantCulture)}}, "bos_token_id": {{Bos}}, "eos_token_id": {{EosTokenId}}
                """;
            return nested
                ? $$"""{"model_type": "clip", "projection_dim": {{Projection}}, "vision_config": {}, "text_config": { {{text}} } }"""
                : $$"""{"model_type": "clip_text_model", "projection_dim": {{Projection}}, {{text}} }""";
        }
    }

    /// <summary>HF CLIPTextModelWithProjection weights under <c>text_model.</c>, plus <c>text_projection.weight</c> and <c>logit_scale</c>.</summary>
    public static Weights Hf(TextShape s, int seed)
    {
        var rng = new Random(seed);
        var w = new Weights();
        int W = s.Hidden, I = s.Intermediate;
        const string t = "text_model.";
        w.Add(t + "embeddings.token_embedding.weight", TinyModels.Random(rng, s.Vocab * W, 0.5), s.Vocab, W);
        w.Add(t + "embeddings.position_embedding.weight", TinyModels.Random(rng, s.Positions * W, 0.3), s.Positions, W);
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"{t}encoder.layers.{l}.";
            foreach (var n in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
            {
                w.Add(p + $"self_attn.{n}.weight", TinyModels.Random(rng, W * W, 0.25), W, W);
                w.Add(p + $"self_attn.{n}.bias", TinyModels.Random(rng, W, 0.1), W);
            }
            Norm(p + "layer_norm1");
            w.Add(p + "mlp.fc1.weight", TinyModels.Random(rng, I * W, 0.25), I, W);
            w.Add(p + "mlp.fc1.bias", TinyModels.Random(rng, I, 0.1), I);
            w.Add(p + "mlp.fc2.weight", TinyModels.Random(rng, W * I, 0.2), W, I);
            w.Add(p + "mlp.fc2.bias", TinyModels.Random(rng, W, 0.1), W);
            Norm(p + "layer_norm2");
        }
        Norm(t + "final_layer_norm");
        w.Add("text_projection.weight", TinyModels.Random(rng, s.Projection * W, 0.2), s.Projection, W);
        w.Add("logit_scale", [2.5f]);
        return w;

        void Norm(string name)
        {
            w.Add(name + ".weight", TinyModels.Random(rng, W, 0.1, 1.0), W);
            w.Add(name + ".bias", TinyModels.Random(rng, W, 0.1), W);
        }
    }

    /// <summary>The same weights under open_clip's text names: fused in_proj, <c>ln_final</c>, <c>text_projection</c> [W, E].</summary>
    public static Weights ToOpenClip(Weights hf, TextShape s, string prefix = "")
    {
        var o = new Weights();
        int W = s.Hidden;
        const string t = "text_model.";
        o.Add(prefix + "token_embedding.weight", hf[t + "embeddings.token_embedding.weight"], s.Vocab, W);
        o.Add(prefix + "positional_embedding", hf[t + "embeddings.position_embedding.weight"], s.Positions, W);
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"{t}encoder.layers.{l}.", q = $"{prefix}transformer.resblocks.{l}.";
            o.Add(q + "attn.in_proj_weight", [.. hf[p + "self_attn.q_proj.weight"], .. hf[p + "self_attn.k_proj.weight"], .. hf[p + "self_attn.v_proj.weight"]], 3 * W, W);
            o.Add(q + "attn.in_proj_bias", [.. hf[p + "self_attn.q_proj.bias"], .. hf[p + "self_attn.k_proj.bias"], .. hf[p + "self_attn.v_proj.bias"]], 3 * W);
            o.Add(q + "attn.out_proj.weight", hf[p + "self_attn.out_proj.weight"], W, W);
            o.Add(q + "attn.out_proj.bias", hf[p + "self_attn.out_proj.bias"], W);
            foreach (var (a, b) in new[] { ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj") })
                foreach (var part in new[] { ".weight", ".bias" })
                    o.Add(q + b + part, hf[p + a + part], hf.ShapeOf(p + a + part));
        }
        o.Add(prefix + "ln_final.weight", hf[t + "final_layer_norm.weight"], W);
        o.Add(prefix + "ln_final.bias", hf[t + "final_layer_norm.bias"], W);
        float[] proj = hf["text_projection.weight"];
        var tr = new float[proj.Length];
        for (int e = 0; e < s.Projection; e++)
            for (int i = 0; i < W; i++) tr[i * s.Projection + e] = proj[e * W + i];
        o.Add(prefix + "text_projection", tr, W, s.Projection);
        o.Add(prefix + "logit_scale", hf["logit_scale"]);
        return o;
    }

    public static string WriteDir(string dir, TextShape s, Weights w, bool nested = false)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), s.ConfigJson(nested));
        w.WriteModel(dir);
        return dir;
    }

    /// <summary>
    /// The float64 forward of an HF-named text tower: every query attends keys 0..i by the loop bound
    /// (no mask arithmetic); pooling scans for the EOS position with the legacy/new rule.
    /// </summary>
    public static (double[] Last, double[] Pooled, double[] Embeds) Forward(Weights w, TextShape s, int[] ids, int batch)
    {
        int T = ids.Length / batch, W = s.Hidden, H = s.Heads, D = W / H;
        const string t = "text_model.";
        float[] tok = w[t + "embeddings.token_embedding.weight"], pos = w[t + "embeddings.position_embedding.weight"];
        var x = new double[batch * T * W];
        for (int r = 0; r < batch * T; r++)
            for (int c = 0; c < W; c++) x[r * W + c] = (double)tok[ids[r] * W + c] + pos[r % T * W + c];
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"{t}encoder.layers.{l}.";
            var h = Float64Reference.LayerNorm(x, W, w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"], s.Eps);
            var q = Lin(h, p + "self_attn.q_proj", W, W);
            var k = Lin(h, p + "self_attn.k_proj", W, W);
            var v = Lin(h, p + "self_attn.v_proj", W, W);
            var ctx = new double[x.Length];
            for (int b = 0; b < batch; b++)
                for (int hd = 0; hd < H; hd++)
                    for (int i = 0; i < T; i++)
                    {
                        var sc = new double[i + 1];
                        double max = double.NegativeInfinity;
                        for (int j = 0; j <= i; j++)
                        {
                            double dot = 0;
                            for (int e = 0; e < D; e++) dot += q[(b * T + i) * W + hd * D + e] * k[(b * T + j) * W + hd * D + e];
                            sc[j] = dot / Math.Sqrt(D);
                            max = Math.Max(max, sc[j]);
                        }
                        double z = 0;
                        for (int j = 0; j <= i; j++) z += sc[j] = Math.Exp(sc[j] - max);
                        for (int j = 0; j <= i; j++)
                            for (int e = 0; e < D; e++) ctx[(b * T + i) * W + hd * D + e] += sc[j] / z * v[(b * T + j) * W + hd * D + e];
                    }
            var attn = Lin(ctx, p + "self_attn.out_proj", W, W);
            for (int i = 0; i < x.Length; i++) x[i] += attn[i];
            h = Float64Reference.LayerNorm(x, W, w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"], s.Eps);
            var f = Lin(h, p + "mlp.fc1", W, s.Intermediate);
            for (int i = 0; i < f.Length; i++) f[i] = Float64Reference.Act(s.Act, f[i]);
            var m = Lin(f, p + "mlp.fc2", s.Intermediate, W);
            for (int i = 0; i < x.Length; i++) x[i] += m[i];
        }
        var last = Float64Reference.LayerNorm(x, W, w[t + "final_layer_norm.weight"], w[t + "final_layer_norm.bias"], s.Eps);
        var pooled = new double[batch * W];
        for (int b = 0; b < batch; b++)
        {
            var row = ids.AsSpan(b * T, T);
            int at = s.EosTokenId == 2 ? row.IndexOf(row.ToArray().Max()) : Math.Max(0, row.IndexOf(s.EosTokenId));
            Array.Copy(last, (b * T + at) * W, pooled, b * W, W);
        }
        var embeds = Float64Reference.Linear(pooled, W, w["text_projection.weight"], null, s.Projection);
        return (last, pooled, embeds);

        double[] Lin(double[] a, string name, int inF, int outF) => Float64Reference.Linear(a, inF, w[name + ".weight"], w[name + ".bias"], outF);
    }
}
