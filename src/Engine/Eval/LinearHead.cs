using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Eval;

/// <summary>
/// An image classification head (task-vectors <c>ClassificationHead</c>, or FusionBench zero-shot
/// class embeddings): <c>weight</c> [C, E], optional <c>bias</c> [C], optional scalar
/// <c>logit_scale</c> (a multiplier, default 1). logits = logit_scale·(f/‖f‖)·Wᵀ + bias.
/// </summary>
public sealed class LinearHead
{
    private LinearHead(string origin, float[] weight, float[]? bias, double scale, int classes, int dim)
    {
        (Origin, Weight, Bias, Scale, Classes, Dim) = (origin, weight, bias, scale, classes, dim);
    }

    /// <summary>The head file, for messages.</summary>
    public string Origin { get; }

    /// <summary>Class embeddings [C, E], row-major.</summary>
    public float[] Weight { get; }

    /// <summary>Per-class offsets, or null.</summary>
    public float[]? Bias { get; }

    /// <summary>Multiplier of the cosine logits.</summary>
    public double Scale { get; }

    /// <summary>Classes C.</summary>
    public int Classes { get; }

    /// <summary>Feature width E.</summary>
    public int Dim { get; }

    /// <summary>Reads a head file; a missing or mis-shaped <c>weight</c> is bad input.</summary>
    public static LinearHead Load(string path)
    {
        using var m = ModelSource.Open(path);
        string weightName = m.Contains("weight") ? "weight"
            : m.Tensors.Where(t => t.Rank == 2 && t.Name.EndsWith("weight", StringComparison.Ordinal)).Select(t => t.Name).ToArray() is [var only] ? only
            : throw new BadInputException($"{P(path)}: head has no \"weight\" tensor [C, E]");
        var w = m.Get(weightName);
        if (w.Rank != 2 || w.Shape[0] < 1 || w.Shape[1] < 1 || !w.DType.IsFloat())
            throw new BadInputException($"{P(path)}: head {Q(weightName)} is {w.DType.SafetensorsName()} {w.ShapeString}, expected float [C, E]");
        int c = (int)w.Shape[0], e = (int)w.Shape[1];
        string prefix = weightName[..^"weight".Length];
        float[]? bias = null;
        if (m.TryGet(prefix + "bias", out var b))
        {
            if (b.ElementCount != c || !b.DType.IsFloat())
                throw new BadInputException($"{P(path)}: head {Q(b.Name)} has shape {b.ShapeString}, expected [{c}]");
            bias = m.ReadFloat32(b.Name);
        }
        double scale = 1;
        if (m.TryGet(prefix + "logit_scale", out var s) || m.TryGet("logit_scale", out s))
        {
            if (s.ElementCount != 1 || !s.DType.IsFloat())
                throw new BadInputException($"{P(path)}: {Q(s.Name)} has shape {s.ShapeString}, expected a scalar");
            scale = m.ReadFloat32(s.Name)[0];
        }
        return new LinearHead(P(path), m.ReadFloat32(weightName), bias, scale, c, e);
    }

    /// <summary>Logits [B, C] of features [B, E] (L2-normalised per row in float64 first).</summary>
    public double[] Logits(ReadOnlySpan<float> features, int batch)
    {
        if (features.Length != batch * Dim) throw new ArgumentException($"features hold {features.Length} values, expected {batch}×{Dim}");
        var logits = new double[batch * Classes];
        for (int b = 0; b < batch; b++)
        {
            var f = features.Slice(b * Dim, Dim);
            double norm = 0;
            foreach (float v in f) norm += (double)v * v;
            double inv = norm > 0 ? 1 / Math.Sqrt(norm) : 0;
            for (int c = 0; c < Classes; c++)
            {
                double dot = 0;
                for (int i = 0; i < Dim; i++) dot += f[i] * (double)Weight[c * Dim + i];
                logits[b * Classes + c] = Scale * dot * inv + (Bias?[c] ?? 0);
            }
        }
        return logits;
    }
}
