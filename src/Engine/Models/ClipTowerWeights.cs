using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Models;

/// <summary>
/// Shared weight loading of the CLIP vision and text towers. An encoder layer in either layout: HF
/// <c>layer_norm1</c>, <c>self_attn.{q,k,v,out}_proj</c>, <c>layer_norm2</c>, <c>mlp.fc1/fc2</c>, or
/// open_clip <c>ln_1</c>, fused <c>attn.in_proj_weight</c> [3W, W] split q | k | v along dim 0,
/// <c>attn.out_proj</c>, <c>ln_2</c>, <c>mlp.c_fc/c_proj</c>. A projection: HF <c>*_projection.weight</c>
/// [E, W], or open_clip's [W, E] (<c>proj</c>, <c>text_projection</c>) transposed.
/// </summary>
internal static class ClipTowerWeights
{
    /// <summary>Loads the layer whose tensors start with <paramref name="prefix"/> and hands its parts to <paramref name="make"/>.</summary>
    public static T LoadBlock<T>(WeightReader r, ClipWeightLayout layout, string prefix, int width, int heads, int intermediate, double eps,
        Func<Norm, SelfAttention, Norm, Linear, Linear, T> make)
    {
        bool hf = layout == ClipWeightLayout.HuggingFace;
        int w = width;
        string p = prefix;
        var parts = new List<IDisposable>();
        try
        {
            var ln1 = Add(Norm.Load(r, p + (hf ? "layer_norm1" : "ln_1"), w, eps));
            SelfAttention attn;
            if (hf)
            {
                var q = Add(Linear.Load(r, p + "self_attn.q_proj", w, w));
                var k = Add(Linear.Load(r, p + "self_attn.k_proj", w, w));
                var v = Add(Linear.Load(r, p + "self_attn.v_proj", w, w));
                var o = Add(Linear.Load(r, p + "self_attn.out_proj", w, w));
                attn = new SelfAttention(q, k, v, o, heads);
            }
            else
            {
                float[] inW = r.Read(p + "attn.in_proj_weight", 3 * w, w);
                float[] inB = r.Read(p + "attn.in_proj_bias", 3 * w);
                Linear Slice(int i) => Add(new Linear(
                    r.Backend.FromHost(inW.AsSpan(i * w * w, w * w).ToArray(), w, w),
                    r.Backend.FromHost(inB.AsSpan(i * w, w).ToArray(), w)));
                var q = Slice(0);
                var k = Slice(1);
                var v = Slice(2);
                var o = Add(Linear.Load(r, p + "attn.out_proj", w, w));
                attn = new SelfAttention(q, k, v, o, heads);
            }
            var ln2 = Add(Norm.Load(r, p + (hf ? "layer_norm2" : "ln_2"), w, eps));
            var fc1 = Add(Linear.Load(r, p + (hf ? "mlp.fc1" : "mlp.c_fc"), intermediate, w));
            var fc2 = Add(Linear.Load(r, p + (hf ? "mlp.fc2" : "mlp.c_proj"), w, intermediate));
            return make(ln1, attn, ln2, fc1, fc2);
        }
        catch
        {
            foreach (var d in parts) d.Dispose();
            throw;
        }

        TD Add<TD>(TD d) where TD : IDisposable
        {
            parts.Add(d);
            return d;
        }
    }

    /// <summary>The projection <paramref name="name"/> as [E, W] on the backend, or null when the checkpoint has none.</summary>
    public static Tensor? LoadProjection(WeightReader r, ClipWeightLayout layout, string name, int w)
    {
        if (!r.Has(name)) return null;
        bool hf = layout == ClipWeightLayout.HuggingFace;
        long[] s = r.ShapeOf(name);
        if (s.Length != 2 || s[hf ? 1 : 0] != w)
            throw new BadInputException(
                $"{P(r.Source.Path)}: tensor {Q(name)} has shape {TensorInfo.FormatShape(s)}, expected {(hf ? $"[E, {w}]" : $"[{w}, E]")}");
        int e = (int)s[hf ? 0 : 1];
        if (hf) return r.Load(name, e, w);
        float[] proj = r.Read(name, w, e);
        var t = new float[e * w];
        for (int i = 0; i < w; i++)
            for (int j = 0; j < e; j++) t[j * w + i] = proj[i * e + j];
        return r.Backend.FromHost(t, e, w);
    }
}
