using System.Runtime.InteropServices;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Tests.Models;

/// <summary>Named float tensors of a test checkpoint (shape + values), in insertion order.</summary>
internal sealed class Weights
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, (int[] Shape, float[] Data)> _map = new(StringComparer.Ordinal);

    public IEnumerable<string> Names => _order;

    public float[] this[string name] => _map[name].Data;

    public int[] ShapeOf(string name) => _map[name].Shape;

    public bool Contains(string name) => _map.ContainsKey(name);

    public void Add(string name, float[] data, params int[] shape)
    {
        if (data.Length != shape.Aggregate(1, (a, b) => a * b)) throw new ArgumentException(name);
        _order.Add(name);
        _map.Add(name, (shape, data));
    }

    /// <summary>Writes every tensor as F32 into <c>dir/model.safetensors</c>.</summary>
    public void WriteModel(string dir) => Write(dir, _order.Select(n => (n, _map[n].Shape, _map[n].Data)));

    public static void Write(string dir, IEnumerable<(string Name, int[] Shape, float[] Data)> tensors)
    {
        var list = tensors.ToList();
        using var w = new SafetensorsWriter(dir, list.Select(t => new TensorSpec(t.Name, DType.F32, t.Shape.Select(d => (long)d).ToArray())));
        foreach (var t in list) w.WriteFloat32(t.Name, t.Data);
        w.Commit();
    }
}

/// <summary>Writes safetensors files of mixed dtypes (test inputs).</summary>
internal static class TestTensors
{
    public static void WriteFile(string path, params (string Name, DType DType, long[] Shape, byte[] Bytes)[] tensors) =>
        SafetensorsSingleFile.Write(path, tensors.Select(t => new TensorSpec(t.Name, t.DType, t.Shape)), w =>
        {
            foreach (var t in tensors) w.Write(t.Name, t.Bytes);
        });

    public static (string, DType, long[], byte[]) F32(string name, float[] values, params long[] shape) =>
        (name, DType.F32, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    public static (string, DType, long[], byte[]) I64(string name, long[] values, params long[] shape) =>
        (name, DType.I64, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
}

/// <summary>Tiny random CLIP-vision and RoBERTa checkpoints in HF (and open_clip) layouts.</summary>
internal static class TinyModels
{
    public sealed record ClipShape(int Hidden = 32, int Layers = 2, int Heads = 4, int Intermediate = 64, int Image = 16, int Patch = 8,
        int Projection = 16, int Channels = 3, string Act = "quick_gelu", double Eps = 1e-5)
    {
        public int Grid => Image / Patch;
        public int Tokens => Grid * Grid + 1;

        private string ActField => Act == "quick_gelu" ? "" : $", \"hidden_act\": \"{Act}\"";

        public string ConfigJson(bool nested = false) => nested
            ? $$"""
              {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": {{Projection}},
               "vision_config": {"hidden_size": {{Hidden}}, "intermediate_size": {{Intermediate}}, "num_hidden_layers": {{Layers}},
                 "num_attention_heads": {{Heads}}, "image_size": {{Image}}, "patch_size": {{Patch}}{{ActField}} }
              }
              """
            : $$"""
              {"architectures": ["CLIPVisionModelWithProjection"], "model_type": "clip_vision_model", "hidden_size": {{Hidden}},
               "intermediate_size": {{Intermediate}}, "num_hidden_layers": {{Layers}}, "num_attention_heads": {{Heads}},
               "num_channels": {{Channels}}, "image_size": {{Image}}, "patch_size": {{Patch}}, "hidden_act": "{{Act}}",
               "layer_norm_eps": {{Eps.ToString(System.Globalization.CultureInfo.InvariantCulture)}}, "projection_dim": {{Projection}}}
              """;
    }

    public sealed record RobertaShape(int Hidden = 32, int Layers = 2, int Heads = 4, int Intermediate = 64, int Vocab = 60,
        int MaxPositions = 20, int TypeVocab = 1, int Labels = 3, double Eps = 1e-5, string Act = "gelu")
    {
        public string ConfigJson() => $$"""
            {"architectures": ["RobertaForSequenceClassification"], "model_type": "roberta", "hidden_size": {{Hidden}},
             "num_hidden_layers": {{Layers}}, "num_attention_heads": {{Heads}}, "intermediate_size": {{Intermediate}},
             "hidden_act": "{{Act}}", "layer_norm_eps": {{Eps.ToString(System.Globalization.CultureInfo.InvariantCulture)}},
             "max_position_embeddings": {{MaxPositions}}, "type_vocab_size": {{TypeVocab}}, "vocab_size": {{Vocab}},
             "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
             "id2label": {{"{" + string.Join(", ", Enumerable.Range(0, Labels).Select(i => $"\"{i}\": \"L{i}\"")) + "}"}}}
            """;
    }

    public static float[] Random(Random rng, int n, double scale, double offset = 0)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            a[i] = (float)(offset + scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return a;
    }

    /// <summary>HF CLIPVisionModelWithProjection weights (prefix vision_model., plus visual_projection.weight).</summary>
    public static Weights ClipHf(ClipShape s, int seed, bool withProjection = true)
    {
        var rng = new Random(seed);
        var w = new Weights();
        int W = s.Hidden, I = s.Intermediate;
        const string v = "vision_model.";
        w.Add(v + "embeddings.class_embedding", Random(rng, W, 0.5), W);
        w.Add(v + "embeddings.patch_embedding.weight", Random(rng, W * s.Channels * s.Patch * s.Patch, 0.1), W, s.Channels, s.Patch, s.Patch);
        w.Add(v + "embeddings.position_embedding.weight", Random(rng, s.Tokens * W, 0.3), s.Tokens, W);
        AddNorm(v + "pre_layrnorm");
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"{v}encoder.layers.{l}.";
            foreach (var n in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
            {
                w.Add(p + $"self_attn.{n}.weight", Random(rng, W * W, 0.25), W, W);
                w.Add(p + $"self_attn.{n}.bias", Random(rng, W, 0.1), W);
            }
            AddNorm(p + "layer_norm1");
            w.Add(p + "mlp.fc1.weight", Random(rng, I * W, 0.25), I, W);
            w.Add(p + "mlp.fc1.bias", Random(rng, I, 0.1), I);
            w.Add(p + "mlp.fc2.weight", Random(rng, W * I, 0.2), W, I);
            w.Add(p + "mlp.fc2.bias", Random(rng, W, 0.1), W);
            AddNorm(p + "layer_norm2");
        }
        AddNorm(v + "post_layernorm");
        if (withProjection) w.Add("visual_projection.weight", Random(rng, s.Projection * W, 0.2), s.Projection, W);
        return w;

        void AddNorm(string name)
        {
            w.Add(name + ".weight", Random(rng, W, 0.1, 1.0), W);
            w.Add(name + ".bias", Random(rng, W, 0.1), W);
        }
    }

    /// <summary>The same weights under open_clip names (prefix <paramref name="prefix"/>): fused in_proj, transposed proj.</summary>
    public static Weights ToOpenClip(Weights hf, ClipShape s, string prefix = "visual.")
    {
        var o = new Weights();
        int W = s.Hidden;
        const string v = "vision_model.";
        o.Add(prefix + "class_embedding", hf[v + "embeddings.class_embedding"], W);
        o.Add(prefix + "positional_embedding", hf[v + "embeddings.position_embedding.weight"], s.Tokens, W);
        o.Add(prefix + "conv1.weight", hf[v + "embeddings.patch_embedding.weight"], W, s.Channels, s.Patch, s.Patch);
        Norm(v + "pre_layrnorm", prefix + "ln_pre");
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"{v}encoder.layers.{l}.", q = $"{prefix}transformer.resblocks.{l}.";
            o.Add(q + "attn.in_proj_weight", [.. hf[p + "self_attn.q_proj.weight"], .. hf[p + "self_attn.k_proj.weight"], .. hf[p + "self_attn.v_proj.weight"]], 3 * W, W);
            o.Add(q + "attn.in_proj_bias", [.. hf[p + "self_attn.q_proj.bias"], .. hf[p + "self_attn.k_proj.bias"], .. hf[p + "self_attn.v_proj.bias"]], 3 * W);
            o.Add(q + "attn.out_proj.weight", hf[p + "self_attn.out_proj.weight"], W, W);
            o.Add(q + "attn.out_proj.bias", hf[p + "self_attn.out_proj.bias"], W);
            Norm(p + "layer_norm1", q + "ln_1");
            Norm(p + "layer_norm2", q + "ln_2");
            o.Add(q + "mlp.c_fc.weight", hf[p + "mlp.fc1.weight"], s.Intermediate, W);
            o.Add(q + "mlp.c_fc.bias", hf[p + "mlp.fc1.bias"], s.Intermediate);
            o.Add(q + "mlp.c_proj.weight", hf[p + "mlp.fc2.weight"], W, s.Intermediate);
            o.Add(q + "mlp.c_proj.bias", hf[p + "mlp.fc2.bias"], W);
        }
        Norm(v + "post_layernorm", prefix + "ln_post");
        if (hf.Contains("visual_projection.weight"))
        {
            float[] p = hf["visual_projection.weight"];
            var t = new float[p.Length];
            for (int e = 0; e < s.Projection; e++)
                for (int i = 0; i < W; i++) t[i * s.Projection + e] = p[e * W + i];
            o.Add(prefix + "proj", t, W, s.Projection);
        }
        return o;

        void Norm(string from, string to)
        {
            o.Add(to + ".weight", hf[from + ".weight"], W);
            o.Add(to + ".bias", hf[from + ".bias"], W);
        }
    }

    /// <summary>HF RobertaForSequenceClassification weights (prefix roberta., classifier.*).</summary>
    public static Weights Roberta(RobertaShape s, int seed)
    {
        var rng = new Random(seed);
        var w = new Weights();
        int W = s.Hidden, I = s.Intermediate;
        const string r = "roberta.";
        w.Add(r + "embeddings.word_embeddings.weight", Random(rng, s.Vocab * W, 0.5), s.Vocab, W);
        w.Add(r + "embeddings.position_embeddings.weight", Random(rng, s.MaxPositions * W, 0.3), s.MaxPositions, W);
        w.Add(r + "embeddings.token_type_embeddings.weight", Random(rng, s.TypeVocab * W, 0.2), s.TypeVocab, W);
        AddNorm(r + "embeddings.LayerNorm");
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"{r}encoder.layer.{l}.";
            foreach (var n in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
            {
                w.Add(p + n + ".weight", Random(rng, W * W, 0.25), W, W);
                w.Add(p + n + ".bias", Random(rng, W, 0.1), W);
            }
            AddNorm(p + "attention.output.LayerNorm");
            w.Add(p + "intermediate.dense.weight", Random(rng, I * W, 0.25), I, W);
            w.Add(p + "intermediate.dense.bias", Random(rng, I, 0.1), I);
            w.Add(p + "output.dense.weight", Random(rng, W * I, 0.2), W, I);
            w.Add(p + "output.dense.bias", Random(rng, W, 0.1), W);
            AddNorm(p + "output.LayerNorm");
        }
        w.Add("classifier.dense.weight", Random(rng, W * W, 0.25), W, W);
        w.Add("classifier.dense.bias", Random(rng, W, 0.1), W);
        w.Add("classifier.out_proj.weight", Random(rng, s.Labels * W, 0.3), s.Labels, W);
        w.Add("classifier.out_proj.bias", Random(rng, s.Labels, 0.1), s.Labels);
        return w;

        void AddNorm(string name)
        {
            w.Add(name + ".weight", Random(rng, W, 0.1, 1.0), W);
            w.Add(name + ".bias", Random(rng, W, 0.1), W);
        }
    }

    public static string WriteClipDir(string dir, ClipShape s, Weights w, bool nestedConfig = false)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), s.ConfigJson(nestedConfig));
        w.WriteModel(dir);
        return dir;
    }

    /// <summary>
    /// An RI test zoo in <paramref name="dir"/>: base = <see cref="ClipHf"/>(<paramref name="modelSeed"/>) and
    /// expert_0/1 = base + τ (uniform, scale 0.05), each handed to <paramref name="write"/> with its
    /// directory name; head_0/1.safetensors (5 classes, logit_scale 4) and aux.safetensors (12 pixel_values);
    /// τ, heads and pixels drawn in that order from <paramref name="seed"/>.
    /// </summary>
    public static void WriteRiZoo(string dir, ClipShape s, int modelSeed, int seed, Action<string, Weights> write)
    {
        var w = ClipHf(s, modelSeed);
        write("base", w);
        var rng = new Random(seed);
        for (int k = 0; k < 2; k++)
        {
            var e = new Weights();
            foreach (var n in w.Names)
            {
                var tau = Random(rng, w[n].Length, 0.05);
                e.Add(n, [.. w[n].Select((v, i) => v + tau[i])], w.ShapeOf(n));
            }
            write($"expert_{k}", e);
            TestTensors.WriteFile(Path.Combine(dir, $"head_{k}.safetensors"),
                TestTensors.F32("weight", Random(rng, 5 * s.Projection, 0.5), 5, s.Projection),
                TestTensors.F32("logit_scale", [4f], 1));
        }
        const int count = 12;
        TestTensors.WriteFile(Path.Combine(dir, "aux.safetensors"),
            TestTensors.F32("pixel_values", Random(rng, count * 3 * s.Image * s.Image, 1.0), count, 3, s.Image, s.Image));
    }

    public static string WriteRobertaDir(string dir, RobertaShape s, Weights w)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), s.ConfigJson());
        w.WriteModel(dir);
        return dir;
    }
}
