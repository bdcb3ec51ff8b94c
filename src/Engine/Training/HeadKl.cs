namespace TaskMerge.Engine.Training;

/// <summary>
/// RI's distance under a fixed zero-shot head (ri.md §1.2, §5.2): the head L2-normalises the image
/// embedding z and multiplies by W [C, E] (class text embeddings × logit scale), and the distance is
/// batch-mean KL(P_teacher ‖ softmax(student logits)). Host float32 in, float64 inside.
/// </summary>
internal static class HeadKl
{
    /// <summary>logits [B, C] ← normalize(z)·Wᵀ, and the normalised rows ẑ [B, E] and norms ‖z‖ [B].</summary>
    private static (double[] Logits, double[] Unit, double[] Norm) Logits(float[] embeds, int batch, int dim, float[] head, int classes)
    {
        var logits = new double[batch * classes];
        var unit = new double[batch * dim];
        var norm = new double[batch];
        for (int b = 0; b < batch; b++)
        {
            double sq = 0;
            for (int e = 0; e < dim; e++) sq += (double)embeds[b * dim + e] * embeds[b * dim + e];
            norm[b] = Math.Sqrt(sq);
            for (int e = 0; e < dim; e++) unit[b * dim + e] = embeds[b * dim + e] / norm[b];
            for (int c = 0; c < classes; c++)
            {
                double s = 0;
                for (int e = 0; e < dim; e++) s += unit[b * dim + e] * head[c * dim + e];
                logits[b * classes + c] = s;
            }
        }
        return (logits, unit, norm);
    }

    /// <summary>Row-wise log-softmax in place.</summary>
    private static void LogSoftmax(double[] x, int rows, int n)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = x.AsSpan(r * n, n);
            double max = double.NegativeInfinity, sum = 0;
            foreach (double v in row) max = Math.Max(max, v);
            foreach (double v in row) sum += Math.Exp(v - max);
            double lse = max + Math.Log(sum);
            for (int i = 0; i < n; i++) row[i] -= lse;
        }
    }

    /// <summary>The head's class probabilities [B, C] for embeddings [B, E] (the teacher side).</summary>
    public static float[] Probabilities(float[] embeds, int batch, int dim, float[] head, int classes)
    {
        var (logits, _, _) = Logits(embeds, batch, dim, head, classes);
        LogSoftmax(logits, batch, classes);
        return [.. logits.Select(v => (float)Math.Exp(v))];
    }

    /// <summary>
    /// Returns weight·KL(P ‖ Q) averaged over the batch (torch <c>kl_div(log q, p, reduction="batchmean")</c>)
    /// with Q = softmax(normalize(z)·Wᵀ), and ADDS its gradient to <paramref name="dEmbeds"/>:
    /// ∂/∂logits = weight·(q − p)/B, dẑ = ∂logits·W, dz = (dẑ − ẑ(ẑ·dẑ))/‖z‖. With
    /// <paramref name="reverse"/> the distance is KL(Q ‖ P) instead (log p floored at log 1e-30):
    /// ∂/∂logits_c = weight·q_c(log q_c − log p_c − KL_b)/B.
    /// </summary>
    public static double LossAndGrad(float[] embeds, int batch, int dim, float[] head, int classes, float[] teacherProbs, double weight, float[] dEmbeds,
        bool reverse = false)
    {
        var (logq, unit, norm) = Logits(embeds, batch, dim, head, classes);
        LogSoftmax(logq, batch, classes);
        double loss = 0;
        var dUnit = new double[dim];
        for (int b = 0; b < batch; b++)
        {
            Array.Clear(dUnit);
            double rowKl = 0;
            if (reverse)
                for (int c = 0; c < classes; c++)
                {
                    double lq = logq[b * classes + c];
                    rowKl += Math.Exp(lq) * (lq - Math.Log(Math.Max(teacherProbs[b * classes + c], 1e-30)));
                }
            loss += rowKl;
            for (int c = 0; c < classes; c++)
            {
                double p = teacherProbs[b * classes + c], lq = logq[b * classes + c];
                double g;
                if (reverse) g = weight * Math.Exp(lq) * (lq - Math.Log(Math.Max(p, 1e-30)) - rowKl) / batch;
                else
                {
                    if (p > 0) loss += p * (Math.Log(p) - lq);
                    g = weight * (Math.Exp(lq) - p) / batch;
                }
                for (int e = 0; e < dim; e++) dUnit[e] += g * head[c * dim + e];
            }
            double dot = 0;
            for (int e = 0; e < dim; e++) dot += unit[b * dim + e] * dUnit[e];
            for (int e = 0; e < dim; e++) dEmbeds[b * dim + e] += (float)((dUnit[e] - unit[b * dim + e] * dot) / norm[b]);
        }
        return weight * loss / batch;
    }
}
