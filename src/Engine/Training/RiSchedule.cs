using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Training;

/// <summary>Learning-rate schedule of RI's AdamW (<c>ri_lr_schedule</c>), each with an optional linear warmup.</summary>
internal enum RiLrSchedule
{
    /// <summary>The base rate after warmup (transformers' <c>get_constant_schedule_with_warmup</c>).</summary>
    Constant,
    /// <summary>Half-cosine decay to 0 after warmup (<c>get_cosine_schedule_with_warmup</c>, 0.5 cycles).</summary>
    Cosine,
    /// <summary>Linear decay to 0 after warmup (<c>get_linear_schedule_with_warmup</c>).</summary>
    Linear,
}

/// <summary>
/// The learning-rate multiplier λ of torch's <c>LambdaLR</c> with Hugging Face transformers'
/// schedule lambdas: the optimizer step s (1-based) runs at lr·λ(s − 1), where for c = s − 1,
/// W warmup steps and T total steps λ(c) = c / max(1, W) while c &lt; W, else 1 (constant),
/// max(0, (T − c) / max(1, T − W)) (linear) or max(0, ½(1 + cos(π·(c − W) / max(1, T − W)))) (cosine).
/// </summary>
internal static class RiLearningRate
{
    /// <summary>λ for optimizer step <paramref name="step"/> (1-based) of <paramref name="steps"/>.</summary>
    public static double Factor(RiLrSchedule schedule, int warmupSteps, int steps, int step)
    {
        int c = step - 1;
        if (c < warmupSteps) return c / (double)Math.Max(1, warmupSteps);
        double span = Math.Max(1, steps - warmupSteps);
        return schedule switch
        {
            RiLrSchedule.Linear => Math.Max(0.0, (steps - c) / span),
            RiLrSchedule.Cosine => Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * ((c - warmupSteps) / span)))),
            _ => 1.0,
        };
    }

    /// <summary>The schedule named by <c>ri_lr_schedule</c>; <see cref="BadInputException"/> for other names.</summary>
    public static RiLrSchedule Parse(string name) => name switch
    {
        "constant" => RiLrSchedule.Constant,
        "cosine" => RiLrSchedule.Cosine,
        "linear" => RiLrSchedule.Linear,
        _ => throw new BadInputException($"ri: ri_lr_schedule must be constant, cosine or linear, got \"{name}\""),
    };
}

/// <summary>
/// Global-norm gradient clipping with torch's <c>clip_grad_norm_</c> semantics: the L2 norm over all
/// gradients together, and when it exceeds max_norm every gradient is scaled by
/// max_norm / (norm + 1e-6) (a coefficient clamped to 1).
/// </summary>
internal static class RiGradClip
{
    /// <summary>
    /// Returns the total L2 norm of <paramref name="grads"/> (float64 sums on <paramref name="backend"/>)
    /// and, when <paramref name="maxNorm"/> &gt; 0 and the coefficient is below 1, scales them in place.
    /// </summary>
    public static double Apply(ITensorOps backend, IEnumerable<Tensor> grads, double maxNorm)
    {
        var list = grads as IReadOnlyList<Tensor> ?? [.. grads];
        double sq = 0;
        foreach (var g in list) sq += backend.SumSquares(g);
        double norm = Math.Sqrt(sq);
        if (maxNorm > 0)
        {
            double coef = maxNorm / (norm + 1e-6);
            if (coef < 1)
                foreach (var g in list) backend.Scale(g, (float)coef, g);
        }
        return norm;
    }
}
