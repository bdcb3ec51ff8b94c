namespace TaskMerge.Engine.Models;

/// <summary>
/// Reads one pre-LN CLIP encoder layer (vision or text tower) in either layout: HF
/// <c>layer_norm1</c>, <c>self_attn.{q,k,v,out}_proj</c>, <c>layer_norm2</c>, <c>mlp.fc1/fc2</c>, or
/// open_clip <c>ln_1</c>, fused <c>attn.in_proj_weight</c> [3W, W] split q | k | v along dim 0,
/// <c>attn.out_proj</c>, <c>ln_2</c>, <c>mlp.c_fc/c_proj</c>.
/// </summary>
internal static class ClipBlockWeights
{
    /// <summary>Loads the layer whose tensors start with <paramref name="prefix"/> and hands its parts to <paramref name="make"/>.</summary>
    public static T Load<T>(WeightReader r, ClipWeightLayout layout, string prefix, int width, int heads, int intermediate, double eps,
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
}
