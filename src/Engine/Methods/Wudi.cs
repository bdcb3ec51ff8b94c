using System.Globalization;
using System.Text.RegularExpressions;
using TaskMerge.Engine.Merge;
using TaskMerge.Engine.Optim;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// WUDI-Merging (Cheng et al., "Whoever Started the Interference Should End It", ICML 2025), with
/// the official semantics (docs/methods/wudi.md): on every 2-D tensor [out,in] not matched by
/// <c>exclude_keys</c>, start from τ_m = Σᵢ τᵢ and run <c>iter_num</c> steps of torch.optim.Adam on
/// L(τ_m) = Σᵢ ‖(τ_m − τᵢ)τᵢᵀ‖²_F / ‖τᵢ‖²_F; θ = θ₀ + <c>scaling</c>·τ_m. Other tensors get
/// <c>non_matrix</c>: θ₀ + mean τᵢ (FusionBench's port) or θ₀ (the official ViT code).
/// <para>
/// The loss is never formed: Adam only needs ∇L = 2(τ_m C − D) with C and D built once per tensor
/// (<see cref="WudiGram"/>), so a step is one GEMM plus one fused Adam update, with no host round
/// trip unless loss logging is on. Task vectors with ‖τᵢ‖ = 0 are left out of C and D (the official
/// code would divide by zero); if all are zero the tensor stays θ₀.
/// </para>
/// <para>
/// Extensions: <c>fuse_qkv</c> optimises each HF q/k/v triple as one stacked [q;k;v] matrix, which is
/// exactly the official open_clip objective on the fused <c>in_proj_weight</c>; <c>solver: closed_form</c>
/// returns τ* = D(C + ρI)⁻¹ by Cholesky instead of the early-stopped Adam trajectory (this changes
/// results: the paper's numbers come from the trajectory).
/// </para>
/// </summary>
public sealed partial class WudiMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "wudi";

    /// <inheritdoc />
    public string Description => "WUDI: per 2-D tensor, Adam on Σᵢ‖(τ_m−τᵢ)τᵢᵀ‖²/‖τᵢ‖² from Σ τᵢ (Cheng et al.)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Float("lr", 1e-5, "Adam learning rate (official ViT code: 1e-5; the RoBERTa code used 2e-5)", range: ParameterRange.NonNegative),
        ParameterDef.Int("iter_num", 300, "Adam steps per tensor; 0 gives task arithmetic with λ = 1", min: 0, max: 1_000_000),
        ParameterDef.Float("scaling", 1.0, "θ = θ₀ + scaling·τ_m on the WUDI tensors"),
        ParameterDef.List("exclude_keys", "regexes searched in tensor names: matching 2-D tensors get non_matrix instead of WUDI"),
        ParameterDef.Choice("non_matrix", "mean", "tensors that are not 2-D or are excluded: mean (θ₀ + mean τᵢ) or base (θ₀)", "mean", "base"),
        ParameterDef.Choice("solver", "adam", "adam (the official early-stopped trajectory) or closed_form (τ = D(C+ρI)⁻¹, an extension)", "adam", "closed_form"),
        ParameterDef.Float("ridge", 1e-4, "closed_form only: ρ = ridge·tr(C)/in, i.e. relative to the mean eigenvalue of C (tr C = number of non-zero task vectors)", range: ParameterRange.NonNegative),
        ParameterDef.Bool("fuse_qkv", false, "optimise each q/k/v (or query/key/value) weight triple as one stacked matrix, as the official open_clip code does (settings are read for the q tensor)"),
        ParameterDef.Bool("log_loss", false, "record the loss every log_every steps and after the last one in merge_report.json"),
        ParameterDef.Int("log_every", 10, "loss logging interval in steps", min: 1, max: 1_000_000),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <summary>Validates <c>exclude_keys</c>; with <c>fuse_qkv</c>, merges every q/k/v triple into <see cref="MergeContext.Prepared"/>.</summary>
    public void Prepare(MergeContext context)
    {
        var exclude = TaskVectors.ExcludeKeys(context.Parameters);
        if (!context.Parameters.Bool("fuse_qkv")) return;
        var triples = QkvTriples(context.Tensors, exclude);
        var depth = new LayerDepth(context.Tensors.Select(t => t.Name));
        var models = Enumerable.Range(0, context.ExpertCount).ToArray();
        foreach (var triple in triples) MergeTriple(context, triple, depth.Of(triple.Names[0]), models);
        context.Report["fused_qkv_triples"] = triples.Count;
    }

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group)
    {
        var be = group.Backend;
        var baseT = group.Base ?? throw new InvalidOperationException("wudi needs a base tensor");
        if (TakeFused(group) is { } fused) return fused;
        if (group.Shape.Length != 2 || TaskVectors.IsExcluded(TaskVectors.ExcludeKeys(group.Parameters), group.Name)) return NonMatrix(group, baseT);

        var s = Settings.Resolve(group.Parameters, group.Name, group.Depth);
        var models = group.Experts.Select(e => e.Model).ToArray();
        var tau = SolveTaskVector(be, [baseT.Rows], baseT.Cols, models, i => [TaskVectors.Of(group, i)], s, group.Name, group.Diagnostics);
        return AddToBase(be, baseT, tau[0], s.Scaling);
    }

    /// <summary>Per-tensor settings, validated.</summary>
    internal sealed record Settings(int Iterations, float Lr, bool ClosedForm, double Ridge, double Scaling, bool LogLoss, int LogEvery)
    {
        public static Settings Resolve(MergeParameters p, string tensor, double depth)
        {
            int iterations = p.Int("iter_num", tensor, depth), logEvery = p.Int("log_every", tensor, depth);
            double lr = p.Float("lr", tensor, depth), ridge = p.Float("ridge", tensor, depth), scaling = p.Float("scaling", tensor, depth);
            if (iterations < 0) throw Bad(tensor, "iter_num", iterations, "must be ≥ 0");
            if (!(lr >= 0) || !double.IsFinite(lr)) throw Bad(tensor, "lr", lr, "must be a finite number ≥ 0");
            if (!(ridge >= 0) || !double.IsFinite(ridge)) throw Bad(tensor, "ridge", ridge, "must be a finite number ≥ 0");
            if (!double.IsFinite(scaling)) throw Bad(tensor, "scaling", scaling, "must be finite");
            if (logEvery < 1) throw Bad(tensor, "log_every", logEvery, "must be ≥ 1");
            return new Settings(iterations, (float)lr, p.String("solver", tensor, depth) == "closed_form", ridge, scaling,
                p.Bool("log_loss", tensor, depth), logEvery);
        }

        private static BadInputException Bad(string tensor, string name, double value, string rule) =>
            new($"tensor {tensor}: parameter '{name}' {rule}, got {value.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>
    /// The merged task vector τ_m of one problem (row blocks of one matrix), by Adam from Σ τᵢ or by
    /// the closed form. <paramref name="tau"/>(i) returns the blocks of the i-th model's task vector,
    /// which are disposed after use; only one task vector is alive at a time.
    /// </summary>
    internal static Tensor[] SolveTaskVector(IBackend be, int[] rows, int cols, IReadOnlyList<int> models, Func<int, Tensor[]> tau,
        Settings s, string name, IDictionary<string, object> diagnostics)
    {
        if (s.Iterations == 0 && !s.ClosedForm && !s.LogLoss) return TaskSum(be, rows, cols, models.Count, tau);

        using var gram = WudiGram.Build(be, rows, cols, models, tau, s.LogLoss, name);
        if (gram.ZeroTasks.Count > 0) diagnostics["zero_task_vectors"] = gram.ZeroTasks.ToArray();
        var m = gram.TakeTaskSum();
        if (gram.TasksUsed == 0) return m;
        try
        {
            if (s.ClosedForm) ClosedForm(be, gram, m, s, name, diagnostics);
            else Adam(be, gram, m, s, diagnostics);
            return m;
        }
        catch
        {
            foreach (var t in m) t.Dispose();
            throw;
        }
    }

    private static Tensor[] TaskSum(ITensorOps be, int[] rows, int cols, int count, Func<int, Tensor[]> tau)
    {
        var sum = rows.Select(r => be.Zeros(r, cols)).ToArray();
        for (int i = 0; i < count; i++)
        {
            var t = tau(i);
            try { for (int b = 0; b < t.Length; b++) be.Add(sum[b], t[b], sum[b]); }
            finally { foreach (var x in t) x.Dispose(); }
        }
        return sum;
    }

    /// <summary>
    /// torch.optim.Adam(lr, betas (0.9, 0.999), eps 1e-8, weight_decay 0) from m = Σ τᵢ: per step the
    /// gradient 2(m·C − D) and one fused update; the loss (optional) costs two dot products.
    /// </summary>
    internal static void Adam(IBackend be, WudiGram gram, Tensor[] m, Settings s, IDictionary<string, object> diagnostics)
    {
        var adam = new AdamSettings(s.Lr);
        var mom = m.Select(t => be.Zeros(t.Rows, t.Cols)).ToArray();
        var vel = m.Select(t => be.Zeros(t.Rows, t.Cols)).ToArray();
        var g = m.Select(t => be.Empty(t.Rows, t.Cols)).ToArray();
        try
        {
            var steps = new List<int>();
            var losses = new List<double>();
            for (int t = 1; t <= s.Iterations; t++)
            {
                gram.Gradient(m, g);
                if (s.LogLoss && (t - 1) % s.LogEvery == 0)
                {
                    steps.Add(t - 1);
                    losses.Add(gram.Loss(m, g));
                }
                for (int b = 0; b < m.Length; b++) be.AdamStep(m[b], g[b], mom[b], vel[b], t, adam);
            }
            if (!s.LogLoss) return;
            gram.Gradient(m, g);
            steps.Add(s.Iterations);
            losses.Add(gram.Loss(m, g));
            diagnostics["loss_steps"] = steps;
            diagnostics["loss"] = losses;
        }
        finally
        {
            foreach (var t in mom.Concat(vel).Concat(g)) t.Dispose();
        }
    }

    /// <summary>τ* = D(C + ρI)⁻¹ with ρ = ridge·tr(C)/in, the minimiser of L(τ) + ρ‖τ‖²_F.</summary>
    private static void ClosedForm(ILinearAlgebraOps be, WudiGram gram, Tensor[] m, Settings s, string name, IDictionary<string, object> diagnostics)
    {
        int cols = gram.C.Cols;
        double rho = s.Ridge * gram.TasksUsed / cols;
        var g = s.LogLoss ? m.Select(t => be.Empty(t.Rows, t.Cols)).ToArray() : [];
        try
        {
            if (s.LogLoss)
            {
                gram.Gradient(m, g);
                diagnostics["loss_initial"] = gram.Loss(m, g);
            }
            for (int b = 0; b < m.Length; b++)
            {
                be.Copy(gram.D[b], m[b]);
                if (!be.CholeskySolve(gram.C, rho, m[b]))
                    throw new BadInputException($"tensor {name}: C + ρI is not positive definite with ridge {s.Ridge.ToString(CultureInfo.InvariantCulture)} " +
                        $"(ρ = {rho.ToString("G4", CultureInfo.InvariantCulture)}); use a larger ridge");
            }
            diagnostics["ridge_rho"] = rho;
            if (!s.LogLoss) return;
            gram.Gradient(m, g);
            diagnostics["loss_final"] = gram.Loss(m, g);
        }
        finally
        {
            foreach (var t in g) t.Dispose();
        }
    }

    private static Tensor AddToBase(ITensorOps be, Tensor baseT, Tensor tau, double scaling)
    {
        if (scaling != 1.0) be.Scale(tau, (float)scaling, tau);
        be.Add(baseT, tau, tau);
        return tau;
    }

    /// <summary><c>non_matrix</c>: θ₀ + mean τᵢ (<see cref="TaskVectors.BasePlusMean"/>) or a copy of θ₀.</summary>
    private static Tensor NonMatrix(TensorGroup group, Tensor baseT)
    {
        if (group.Parameters.String("non_matrix", group.Name, group.Depth) == "mean" && group.Experts.Count > 0) return TaskVectors.BasePlusMean(group);
        var copy = group.Backend.Empty(baseT.Shape.ToArray());
        group.Backend.Copy(baseT, copy);
        return copy;
    }

    private sealed record QkvTriple(string[] Names, int[] Rows, int Cols);

    [GeneratedRegex(@"^(?<prefix>(?:.*\.)?)(?<role>q_proj|k_proj|v_proj|query|key|value)\.weight$", RegexOptions.CultureInvariant)]
    private static partial Regex QkvName();

    /// <summary>
    /// Sibling q/k/v weights (<c>….q_proj.weight</c>, <c>….k_proj.weight</c>, <c>….v_proj.weight</c>, or
    /// RoBERTa's <c>….query/key/value.weight</c>): all three present, 2-D, the same input width and
    /// none excluded.
    /// </summary>
    private static List<QkvTriple> QkvTriples(IReadOnlyList<(string Name, int[] Shape)> tensors, Regex[] exclude)
    {
        var slots = new Dictionary<string, (string Name, int[] Shape)?[]>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var (name, shape) in tensors)
        {
            var match = QkvName().Match(name);
            if (!match.Success) continue;
            string role = match.Groups["role"].Value;
            int slot = role switch { "q_proj" or "query" => 0, "k_proj" or "key" => 1, _ => 2 };
            string key = match.Groups["prefix"].Value + (role.EndsWith("_proj", StringComparison.Ordinal) ? "|proj" : "|qkv");
            if (!slots.TryGetValue(key, out var s))
            {
                slots[key] = s = new (string, int[])?[3];
                order.Add(key);
            }
            s[slot] = (name, shape);
        }
        var triples = new List<QkvTriple>();
        foreach (var key in order)
        {
            if (slots[key].Any(x => x is null)) continue;
            var parts = slots[key].Select(x => x!.Value).ToArray();
            if (parts.Any(p => p.Shape.Length != 2 || p.Shape[1] != parts[0].Shape[1] || TaskVectors.IsExcluded(exclude, p.Name))) continue;
            triples.Add(new QkvTriple(parts.Select(p => p.Name).ToArray(), parts.Select(p => p.Shape[0]).ToArray(), parts[0].Shape[1]));
        }
        return triples;
    }

    /// <summary>Merges one triple as the stacked matrix [q; k; v] and leaves the three merged blocks in <see cref="MergeContext.Prepared"/>.</summary>
    private static void MergeTriple(MergeContext context, QkvTriple triple, double depth, int[] models)
    {
        var be = context.Backend;
        string first = triple.Names[0];
        var s = Settings.Resolve(context.Parameters, first, depth);
        var bases = new Tensor?[triple.Names.Length];
        Tensor[] tau = [];
        try
        {
            for (int b = 0; b < bases.Length; b++) bases[b] = context.Load(triple.Names[b], -1);
            var diagnostics = new Dictionary<string, object>();
            tau = SolveTaskVector(be, triple.Rows, triple.Cols, models, i =>
            {
                var blocks = new Tensor[triple.Names.Length];
                try
                {
                    for (int b = 0; b < blocks.Length; b++) blocks[b] = TaskVectors.Load(context, triple.Names[b], models[i], bases[b]!);
                    return blocks;
                }
                catch
                {
                    foreach (var t in blocks) t?.Dispose();
                    throw;
                }
            }, s, first, diagnostics);
            for (int b = 0; b < tau.Length; b++)
            {
                AddToBase(be, bases[b]!, tau[b], s.Scaling);
                var values = new float[tau[b].Length];
                be.Download(tau[b], values);
                var d = b == 0 ? diagnostics : new Dictionary<string, object>();
                d["fused_qkv"] = triple.Names;
                context.Prepared.Add(triple.Names[b], new PreparedTensor(values, d, context.ExpertCount));
            }
        }
        finally
        {
            foreach (var t in bases) t?.Dispose();
            foreach (var t in tau) t.Dispose();
        }
    }

    /// <summary>The merged tensor <see cref="Prepare"/> computed for a fused q/k/v name (taken from <see cref="TensorGroup.Prepared"/>), or null.</summary>
    private static Tensor? TakeFused(TensorGroup group)
    {
        if (group.Prepared.Take(group.Name) is not { } block) return null;
        if (group.Experts.Count != block.ExpertCount)
            throw new BadInputException($"tensor {group.Name}: fuse_qkv needs this tensor from all {block.ExpertCount} models, " +
                $"but only {group.Experts.Count} take part (skipped for shape under --allow-crimes?); set fuse_qkv: false");
        foreach (var (k, v) in block.Diagnostics) group.Diagnostics[k] = v;
        var t = group.Backend.Empty(group.Shape.ToArray());
        group.Backend.Upload(block.Values, t);
        return t;
    }
}
