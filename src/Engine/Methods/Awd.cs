using System.Diagnostics;
using System.Text.RegularExpressions;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// AWD, adaptive weight disentanglement (Xiong et al., arXiv 2411.18729; docs/methods/awd.md):
/// find one redundant vector δ, shared by all tasks and initialised to 0, that minimises
/// L = 1/(K(K−1))·Σ_{i≠j} |cos(τᵢ−δ, τⱼ−δ)| + α·‖δ‖₂ over the included tensors (2-D, not matching
/// <c>exclude_keys</c>), then merge the disentangled τ̂ᵢ = τᵢ − δ with the base method
/// (task_arithmetic or ties, with its own parameters). Tensors outside the included set use δ = 0.
/// </summary>
/// <remarks>
/// <para>The gradient is analytic: everything but its final combination depends only on the K×K Gram
/// of the τ̂ᵢ (<see cref="AwdObjective"/>). For gd and sgd δ stays in span{τᵢ}, so after one pass that
/// accumulates G_τ = TTᵀ in float64 the whole optimisation runs on K coefficients per block
/// (<see cref="AwdCoefficientSolver"/>) and the merge pass forms τ̂ᵢ = τᵢ − Σⱼaⱼτⱼ: at model
/// granularity the method reads the experts twice (the Gram pass in <see cref="Prepare"/>, the
/// merge pass) whatever <c>iter_num</c> is.</para>
/// <para>Adam leaves the span and runs in full space (<see cref="AwdFullSpaceSolver"/>): at model
/// granularity δ and Adam's two moments are held for every included tensor (three float32 copies
/// of the included part of one model on the compute device) and every iteration is one more pass
/// over the experts, so it reads the experts <c>iter_num</c> + 2 times — exact, but slow on large
/// models; tensor and row granularity keep one tensor's task vectors in memory instead.</para>
/// </remarks>
public sealed class AwdMethod : IMergeMethod
{
    private Options? _options;
    private double[]? _modelCoefficients;
    private Dictionary<string, Tensor>? _modelDelta;
    private IDictionary<string, object>? _report;
    private int _tensorsSolved;
    private double _sumOrthBefore, _sumOrthAfter;

    /// <inheritdoc />
    public string Name => "awd";

    /// <inheritdoc />
    public string Description => "AWD: subtract one shared redundant vector δ that makes the task vectors near-orthogonal, then task_arithmetic or ties (Xiong et al.)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Choice("granularity", "model", "what one cosine is taken over: model (all included tensors flattened), tensor, or row (one per output row, mean over rows; regulariser Σᵣ‖δᵣ‖)", "model", "tensor", "row"),
        ParameterDef.Choice("optimizer", "gd", "gd (δ ← δ − lr·∇L), sgd (torch SGD with momentum) or adam (torch Adam, β 0.9/0.999, eps 1e-8)", "gd", "sgd", "adam"),
        ParameterDef.Float("lr", 0.01, "learning rate", range: ParameterRange.NonNegative),
        ParameterDef.Int("iter_num", 300, "number of updates of δ", min: 0, max: 1_000_000),
        ParameterDef.Float("alpha", 0.1, "weight α of the regulariser ‖δ‖₂", range: ParameterRange.NonNegative),
        ParameterDef.Float("momentum", 0.9, "sgd momentum μ (buf ← μ·buf + g, torch order)", range: ParameterRange.NonNegative),
        ParameterDef.Float("weight_decay", 0.0, "L2 weight decay: wd·δ added to the gradient by every optimizer (torch semantics)", range: ParameterRange.NonNegative),
        ParameterDef.List("exclude_keys", "regexes (searched anywhere in the name) of 2-D tensors left out of AWD (δ = 0 there)"),
        ParameterDef.Choice("base_method", "task_arithmetic", "method merging the disentangled task vectors τ̂ᵢ = τᵢ − δ", "task_arithmetic", "ties"),
        .. TaskArithmeticCore.CommonParameters(normalize: false, rescale: false).Select(d => d.Name == "normalize"
            ? d with { Doc = "divide by the (sign-masked) sum of weights; when not given: false for base_method task_arithmetic, true for ties" }
            : d),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public void Prepare(MergeContext context)
    {
        var o = _options = Options.From(context.Parameters);
        _report = context.Report;
        var r = context.Report;
        r["granularity"] = o.Granularity.ToString().ToLowerInvariant();
        r["optimizer"] = o.Optimizer.ToString().ToLowerInvariant();
        r["base_method"] = o.BaseMethod;
        r["base_method_normalize"] = o.Normalize;
        if (o.Granularity != AwdGranularity.Model) return;

        var included = context.Tensors.Where(t => o.Includes(t.Name, t.Shape)).ToList();
        r["included_tensors"] = included.Count;
        r["included_parameters"] = included.Sum(t => t.Shape.Aggregate(1L, (a, d) => a * d));
        var settings = Settings(context.Parameters, "", 0, o.Optimizer);
        int k = context.ExpertCount;
        var source = new StreamedTaskVectors(context, included.Select(t => t.Name).ToList());
        using var ops = AwdBlockOps.Whole(context.Backend);
        AwdSummary summary;
        if (o.Optimizer == AwdOptimizer.Adam)
        {
            var clock = Stopwatch.StartNew();
            using var solver = new AwdFullSpaceSolver(context.Backend, source, ops, k, k < 2 ? settings with { Iterations = 0 } : settings);
            summary = solver.Run();
            _modelDelta = [];
            for (int i = 0; i < included.Count; i++)
                if (solver.TakeDelta(i) is { } d) _modelDelta[included[i].Name] = d;
            r["prepare_passes_over_experts"] = summary.Iterations + 1;
            r["optimize_seconds"] = clock.Elapsed.TotalSeconds;
        }
        else
        {
            var clock = Stopwatch.StartNew();
            var gram = TaskVectorGram.Compute(source, ops, k);
            r["gram_pass_seconds"] = clock.Elapsed.TotalSeconds;
            clock.Restart();
            (_modelCoefficients, summary) = AwdCoefficientSolver.Solve(gram, 1, k, k < 2 ? settings with { Iterations = 0 } : settings);
            r["optimize_seconds"] = clock.Elapsed.TotalSeconds;
            r["prepare_passes_over_experts"] = 1;
            r["coefficients"] = _modelCoefficients;
        }
        summary.WriteTo(r);
    }

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group)
    {
        var o = _options ??= Options.From(group.Parameters);
        var taus = DisentangledTaskVectors(group);
        try
        {
            return o.BaseMethod == "ties"
                ? TaskArithmeticCore.MergeTaskVectors(group, taus, Sparsification.Magnitude, consensus: true, o.Normalize)
                : TaskArithmeticCore.MergeTaskVectors(group, taus, Sparsification.None, consensus: false, o.Normalize);
        }
        finally
        {
            foreach (var t in taus) t.Dispose();
        }
    }

    /// <summary>τ̂ᵢ = τᵢ − δ for the experts of <paramref name="g"/> (τᵢ where the tensor is not included); the caller disposes them.</summary>
    internal List<Tensor> DisentangledTaskVectors(TensorGroup g)
    {
        var o = _options ??= Options.From(g.Parameters);
        var be = g.Backend;
        var taus = TaskVectors.All(g);
        try
        {
            if (o.Includes(g.Name, g.Shape))
            {
                using var delta = RedundantVector(g, taus, o);
                if (delta is not null)
                    foreach (var tv in taus) be.Sub(tv, delta, tv);
            }
            return taus;
        }
        catch
        {
            foreach (var t in taus) t.Dispose();
            throw;
        }
    }

    private Tensor? RedundantVector(TensorGroup g, List<Tensor> taus, Options o)
    {
        var be = g.Backend;
        if (o.Granularity == AwdGranularity.Model)
        {
            if (_modelDelta is not null)
                return _modelDelta.Remove(g.Name, out var stored) ? stored : null;
            var all = _modelCoefficients ?? throw new InvalidOperationException("awd at model granularity needs Prepare (the Gram pass) before Merge");
            var coefficients = g.Experts.Select(e => all[e.Model]).ToArray();
            using var whole = AwdBlockOps.Whole(be);
            return AwdCoefficientSolver.Delta(be, whole, taus, coefficients, coefficients.Length);
        }

        int k = taus.Count;
        if (k < 2) return null;
        var settings = Settings(g.Parameters, g.Name, g.Depth, o.Optimizer);
        var shape = g.Shape;
        using var ops = o.Granularity == AwdGranularity.Row ? AwdBlockOps.PerRow(be, shape[0], shape[1]) : AwdBlockOps.Whole(be);
        var source = new InMemoryTaskVectors([taus]);
        AwdSummary summary;
        Tensor? delta;
        if (settings.Optimizer == AwdOptimizer.Adam)
        {
            using var solver = new AwdFullSpaceSolver(be, source, ops, k, settings);
            summary = solver.Run();
            delta = solver.TakeDelta(0);
        }
        else
        {
            var gram = TaskVectorGram.Compute(source, ops, k);
            (var coefficients, summary) = AwdCoefficientSolver.Solve(gram, ops.Blocks, k, settings);
            delta = AwdCoefficientSolver.Delta(be, ops, taus, coefficients, k);
        }
        summary.WriteTo(g.Diagnostics);
        if (_report is { } r)
        {
            _tensorsSolved++;
            _sumOrthBefore += summary.OrthBefore;
            _sumOrthAfter += summary.OrthAfter;
            r["included_tensors"] = _tensorsSolved;
            r["mean_loss_orth_before"] = _sumOrthBefore / _tensorsSolved;
            r["mean_loss_orth_after"] = _sumOrthAfter / _tensorsSolved;
        }
        return delta;
    }

    private static AwdSettings Settings(MergeParameters p, string tensor, double depth, AwdOptimizer optimizer)
    {
        double lr = p.Float("lr", tensor, depth), alpha = p.Float("alpha", tensor, depth);
        double momentum = p.Float("momentum", tensor, depth), wd = p.Float("weight_decay", tensor, depth);
        int iters = p.Int("iter_num", tensor, depth);
        string where = tensor.Length > 0 ? $" (tensor {tensor})" : "";
        foreach (var (name, v) in new[] { ("lr", lr), ("alpha", alpha), ("momentum", momentum), ("weight_decay", wd), ("iter_num", (double)iters) })
            if (!double.IsFinite(v) || v < 0)
                throw new BadInputException($"awd: parameter '{name}' must be a finite number ≥ 0, got {v}{where}");
        return new AwdSettings(optimizer, lr, iters, alpha, momentum, wd);
    }

    /// <summary>Global choices, resolved once.</summary>
    private sealed record Options(AwdGranularity Granularity, AwdOptimizer Optimizer, string BaseMethod, bool Normalize, Regex[] Exclude)
    {
        public static Options From(MergeParameters p)
        {
            string baseMethod = p.String("base_method");
            var exclude = TaskVectors.ExcludeKeys(p);
            return new Options(
                Enum.Parse<AwdGranularity>(p.String("granularity"), ignoreCase: true),
                Enum.Parse<AwdOptimizer>(p.String("optimizer"), ignoreCase: true),
                baseMethod,
                p.IsSet("normalize") ? p.Bool("normalize") : baseMethod == "ties",
                exclude);
        }

        /// <summary>AWD acts on non-empty 2-D tensors whose name matches no <c>exclude_keys</c> regex.</summary>
        public bool Includes(string name, ReadOnlySpan<int> shape) => TaskVectors.IsIncludedMatrix(name, shape, Exclude);
    }
}
