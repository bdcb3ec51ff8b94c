using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>How task vectors are sparsified before mixing.</summary>
public enum Sparsification
{
    /// <summary>Keep every entry.</summary>
    None,
    /// <summary>Keep the top <c>density</c> fraction by magnitude (TIES).</summary>
    Magnitude,
    /// <summary>Keep each entry with probability <c>density</c> (DARE).</summary>
    Random,
    /// <summary>
    /// Drop the top <c>gamma</c> fraction by magnitude, then the smallest, keeping <c>density</c>
    /// (Model Breadcrumbs; mergekit's <c>magnitude_outliers</c>).
    /// </summary>
    MagnitudeOutliers,
    /// <summary>
    /// Keep each entry with a probability from <c>density − epsilon</c> to <c>density + epsilon</c> by its
    /// magnitude rank along dimension 1 (DELLA MAGPRUNE; mergekit's <c>della_magprune</c>).
    /// </summary>
    DellaMagprune,
}

/// <summary>
/// A method that is one configuration of <see cref="TaskArithmeticCore.Merge"/>: its per-tensor merge is
/// <c>TaskArithmeticCore.Merge(group, Sparsification, Consensus)</c>, nothing else, so a pipeline may run it
/// in the streamed form of <c>Merge.HostTaskArithmetic</c> on host memory.
/// </summary>
public interface ITaskArithmeticConfiguration
{
    /// <summary>How task vectors are sparsified.</summary>
    Sparsification Sparsification { get; }

    /// <summary>TIES sign election and disjoint merge instead of a plain sum.</summary>
    bool Consensus { get; }
}

/// <summary>
/// mergekit's generalized task arithmetic, which task_arithmetic, ties, dare_linear and dare_ties
/// configure: τᵢ = θᵢ − θ₀ → sparsify (optional L1 rescale) → weight → optional sign consensus →
/// sum → divide by the (masked) weight sum when <c>normalize</c> → times <c>lambda</c> → θ₀ + mix.
/// </summary>
public static class TaskArithmeticCore
{
    /// <summary>Parameters every configuration shares.</summary>
    public static IReadOnlyList<ParameterDef> CommonParameters(bool normalize, bool rescale) =>
    [
        ParameterDef.Float("weight", 1.0, "per-model weight wᵢ", perModel: true),
        ParameterDef.Float("density", 1.0, "fraction of each task vector kept (TIES/DARE)", perModel: true, range: ParameterRange.Fraction),
        ParameterDef.Float("lambda", 1.0, "scale of the mixed task vector"),
        ParameterDef.Bool("normalize", normalize, "divide by the (sign-masked) sum of weights"),
        ParameterDef.Bool("rescale", rescale, "after sparsifying, rescale to the original L1 norm (mergekit)"),
        ParameterDef.Bool("int8_mask", false, "accepted for mergekit compatibility; masks never take extra memory here"),
    ];

    /// <summary>The per-model <c>gamma</c> parameter of the breadcrumbs methods (mergekit default 0.01).</summary>
    public static ParameterDef Gamma { get; } =
        ParameterDef.Float("gamma", 0.01, "fraction of largest-magnitude entries dropped as outliers (breadcrumbs)", perModel: true, range: ParameterRange.Fraction);

    /// <summary>The per-model <c>epsilon</c> parameter of the DELLA methods (mergekit default 0.15).</summary>
    public static ParameterDef Epsilon { get; } =
        ParameterDef.Float("epsilon", 0.15, "keep probabilities span density ± epsilon by magnitude rank (DELLA)", perModel: true);

    /// <summary>Merges one tensor group.</summary>
    public static Tensor Merge(TensorGroup g, Sparsification sparsification, bool consensus)
    {
        var taskVectors = TaskVectors.All(g);
        try
        {
            return MergeTaskVectors(g, taskVectors, sparsification, consensus, g.Bool("normalize"));
        }
        finally
        {
            foreach (var t in taskVectors) t.Dispose();
        }
    }

    /// <summary>
    /// Merges given task vectors into θ₀ + mix, for methods that change the task vectors first
    /// (e.g. AWD's τ̂ᵢ = τᵢ − δ). <paramref name="taskVectors"/>[i] belongs to
    /// <c>g.Experts[i]</c>; they are sparsified and weighted in place (the caller still owns them).
    /// </summary>
    /// <param name="g">The group: base tensor, expert indices, backend and parameters.</param>
    /// <param name="taskVectors">One task vector per expert of the group, in the same order.</param>
    /// <param name="sparsification">How each task vector is sparsified.</param>
    /// <param name="consensus">TIES sign election and disjoint merge instead of a plain sum.</param>
    /// <param name="normalize">Divide by the (sign-masked) sum of weights.</param>
    public static Tensor MergeTaskVectors(TensorGroup g, IReadOnlyList<Tensor> taskVectors, Sparsification sparsification, bool consensus, bool normalize)
    {
        var be = g.Backend;
        var baseT = g.Base ?? throw new InvalidOperationException("task arithmetic needs a base tensor");
        if (taskVectors.Count != g.Experts.Count)
            throw new ArgumentException($"tensor {g.Name}: {taskVectors.Count} task vectors for {g.Experts.Count} experts");
        bool rescale = g.Bool("rescale");
        double lambda = g.Float("lambda");
        int k = g.Experts.Count;
        var weights = new float[k];
        for (int i = 0; i < k; i++)
        {
            var e = g.Experts[i];
            var tv = taskVectors[i];
            weights[i] = (float)g.Float("weight", e.Model);
            if (sparsification != Sparsification.None)
                Sparsify(g, tv, g.Float("density", e.Model), sparsification, rescale, e.Model);
            if (weights[i] != 1f) be.Scale(tv, weights[i], tv);
        }

        var mixed = be.Zeros(baseT.Shape.ToArray());
        if (consensus)
        {
            using var divisor = be.Empty(baseT.Shape.ToArray());
            be.SignConsensus(taskVectors, weights, mixed, divisor);
            if (normalize) be.Div(mixed, divisor, mixed);
        }
        else
        {
            foreach (var tv in taskVectors) be.Add(mixed, tv, mixed);
            float divisor = 0f;
            foreach (float w in weights) divisor += w;
            if (Math.Abs(divisor) < 1e-8f) divisor = 1f;
            if (normalize) be.Scale(mixed, 1f / divisor, mixed);
        }
        if (lambda != 1.0) be.Scale(mixed, (float)lambda, mixed);
        be.Add(baseT, mixed, mixed);
        return mixed;
    }

    internal static void Sparsify(TensorGroup g, Tensor tv, double density, Sparsification how, bool rescale, int model)
    {
        if (density >= 1) return;
        var be = g.Backend;
        double before = rescale ? be.SumAbs(tv) : 0;
        if (density < 0 || double.IsNaN(density))
            throw new BadInputException($"tensor {g.Name}: parameter 'density' must be ≥ 0, got {density} for model {model}");
        if (how == Sparsification.DellaMagprune)
        {
            MagnitudeRankedKeep(g, tv, density, g.Float("epsilon", model), model);
        }
        else if (how == Sparsification.MagnitudeOutliers)
        {
            KeepMagnitudeBand(g, tv, density, g.Float("gamma", model), model);
        }
        else if (how == Sparsification.Magnitude)
        {
            long k = (long)(density * tv.Length);
            if (k <= 0)
                throw new BadInputException($"tensor {g.Name}: density {density} keeps no element of {tv.Length} for model {model}");
            be.KeepTopKMagnitude(tv, k);
        }
        else
        {
            be.BernoulliKeep(tv, (float)density, g.Seed, CounterRng.StreamId(g.Name, model));
        }
        if (!rescale) return;
        double after = be.SumAbs(tv);
        if (before < 1e-7 || after < 1e-7) return;
        be.Scale(tv, (float)(before / after), tv);
    }

    /// <summary>
    /// Keeps the magnitude ranks [nTop, nTop + target) in descending order (ties: lower flat index
    /// first), with target = ⌊density·n⌋ and nTop = ⌊gamma·n⌋ cut down so that target fit.
    /// </summary>
    private static void KeepMagnitudeBand(TensorGroup g, Tensor tv, double density, double gamma, int model)
    {
        if (gamma < 0 || gamma > 1 || double.IsNaN(gamma))
            throw new BadInputException($"tensor {g.Name}: parameter 'gamma' must be in [0, 1], got {gamma} for model {model}");
        var be = g.Backend;
        long n = tv.Length;
        long target = (long)(density * n);
        long nTop = Math.Min((long)(gamma * n), n - target);
        if (target <= 0)
        {
            be.Fill(tv, 0f);
            return;
        }
        be.KeepTopKMagnitude(tv, nTop + target);
        if (nTop == 0) return;
        using var top = be.Empty(tv.Shape.ToArray());
        be.Copy(tv, top);
        be.KeepTopKMagnitude(top, nTop);
        be.Sub(tv, top, tv);
    }

    /// <summary>
    /// DELLA MAGPRUNE: ranks along dimension 1 (a 1-D tensor is one line), keep probability rising
    /// linearly from density − epsilon (smallest magnitude) to density + epsilon (largest).
    /// </summary>
    private static void MagnitudeRankedKeep(TensorGroup g, Tensor tv, double density, double epsilon, int model)
    {
        var be = g.Backend;
        if (density <= 0)
        {
            be.Fill(tv, 0f);
            return;
        }
        if (!(density + Math.Abs(epsilon) < 1 && density - Math.Abs(epsilon) > 0))
            throw new BadInputException($"tensor {g.Name}: parameter 'epsilon' ({epsilon}) must keep density ± epsilon in (0, 1) (density {density}) for model {model}");
        if (tv.Length == 0) return;
        var shape = tv.Shape;
        int line = shape.Length < 2 ? (int)tv.Length : shape[1];
        int inner = shape.Length < 2 ? 1 : (int)(tv.Length / ((long)shape[0] * shape[1]));
        be.RankedBernoulliKeep(tv, line, inner, density - epsilon, density + epsilon, g.Seed, CounterRng.StreamId(g.Name, model));
    }
}
