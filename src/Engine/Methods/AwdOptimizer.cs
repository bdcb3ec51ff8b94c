using TaskMerge.Engine.Optim;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// The AWD iteration shared by both solvers. All blocks are evaluated from G_τ and δ's statistics
/// (p = Tδ, s = ‖δ‖² per block) in float64; a solver-specific step then updates δ and returns the
/// statistics of the new δ.
/// </summary>
internal static class AwdLoop
{
    /// <summary>Updates δ at 1-based iteration <c>it</c> given β (blocks×K) and γ (blocks), and overwrites p and s with the new δ's statistics.</summary>
    public delegate void Step(int it, double[] beta, double[] gamma, double[] p, double[] s);

    /// <summary>
    /// Runs <see cref="AwdSettings.Iterations"/> steps from δ = 0 and summarises the result;
    /// <paramref name="scale"/> is each block's weight in the mean over blocks (1/rows of the tensor
    /// at row granularity, also when the rows are solved in separate runs).
    /// </summary>
    public static AwdSummary Run(double[] gramTau, int blocks, int k, double scale, AwdSettings settings, Step step)
    {
        var summary = new AwdSummary(k) { Alpha = settings.Alpha, Iterations = settings.Iterations };
        var p = new double[blocks * k];
        var s = new double[blocks];
        var beta = new double[blocks * k];
        var gamma = new double[blocks];
        summary.OrthBefore = Evaluate(gramTau, p, s, blocks, k, scale, settings.Alpha, beta, gamma, summary.CosineBefore);
        for (int it = 1; it <= settings.Iterations; it++)
        {
            step(it, beta, gamma, p, s);
            if (it < settings.Iterations) Evaluate(gramTau, p, s, blocks, k, scale, settings.Alpha, beta, gamma, []);
        }
        summary.OrthAfter = Evaluate(gramTau, p, s, blocks, k, scale, settings.Alpha, beta, gamma, summary.CosineAfter);
        double reg = 0, sq = 0;
        foreach (double x in s)
        {
            reg += Math.Sqrt(Math.Max(x, 0));
            sq += Math.Max(x, 0);
        }
        summary.RegularizerAfter = reg;
        summary.DeltaNorm = Math.Sqrt(sq);
        return summary;
    }

    /// <summary>Fills β and γ of every block; returns Σ_b scale·L_O^b; adds Σ_b scale·cosine^b into <paramref name="cosine"/> unless empty.</summary>
    public static double Evaluate(double[] gramTau, double[] p, double[] s, int blocks, int k, double scale, double alpha,
        double[] beta, double[] gamma, Span<double> cosine)
    {
        double orth = 0;
        var blockCosine = cosine.IsEmpty ? [] : new double[k * k];
        for (int b = 0; b < blocks; b++)
        {
            Array.Clear(blockCosine);
            var betaB = beta.AsSpan(b * k, k);
            orth += AwdObjective.Evaluate(gramTau.AsSpan(b * k * k, k * k), p.AsSpan(b * k, k), s[b], k, scale, betaB, blockCosine);
            gamma[b] = AwdObjective.DeltaCoefficient(betaB, Math.Sqrt(Math.Max(s[b], 0)), alpha);
            for (int i = 0; i < blockCosine.Length; i++) cosine[i] += blockCosine[i] * scale;
        }
        return orth * scale;
    }
}

/// <summary>
/// The exact K-coefficient path for gd and sgd (methods/awd.md §2): from δ⁰ = 0 every gradient
/// −Σₖβₖτₖ + γδ (+ wd·δ) lies in span{τₖ}, so δ = Σₖ aₖτₖ for ever and the whole iteration runs on
/// the K coefficients of each block in float64, with p = G_τa and s = aᵀG_τa. The coefficients of the
/// gradient are −β + γa; the update rules are those of the full-space iteration, applied to them.
/// </summary>
internal static class AwdCoefficientSolver
{
    /// <summary>Solves every block (independent problems, in parallel); returns the coefficients (blocks×K) and the summary.</summary>
    public static (double[] Coefficients, AwdSummary Summary) Solve(double[] gramTau, int blocks, int k, AwdSettings settings)
    {
        if (settings.Optimizer == AwdOptimizer.Adam)
            throw new InvalidOperationException("Adam's per-coordinate scaling leaves span{τₖ}; it needs the full-space solver");
        var a = new double[blocks * k];
        var summaries = new AwdSummary[blocks];
        Parallel.For(0, blocks, b => summaries[b] = SolveBlock(gramTau.AsSpan(b * k * k, k * k).ToArray(), k, 1.0 / blocks, settings, a.AsMemory(b * k, k)));
        var summary = summaries[0];
        for (int b = 1; b < blocks; b++) summary.Add(summaries[b]);
        return (a, summary);
    }

    private static AwdSummary SolveBlock(double[] gramTau, int k, double scale, AwdSettings settings, Memory<double> coefficients)
    {
        var buffer = new double[k];
        return AwdLoop.Run(gramTau, 1, k, scale, settings, (it, beta, gamma, p, s) =>
        {
            var a = coefficients.Span;
            for (int j = 0; j < k; j++)
            {
                double grad = -beta[j] + gamma[0] * a[j] + settings.WeightDecay * a[j];
                if (settings.Optimizer == AwdOptimizer.Sgd)
                {
                    buffer[j] = it == 1 ? grad : settings.Momentum * buffer[j] + grad;
                    grad = buffer[j];
                }
                a[j] -= settings.Lr * grad;
            }
            double sq = 0;
            for (int i = 0; i < k; i++)
            {
                double pi = 0;
                for (int j = 0; j < k; j++) pi += gramTau[i * k + j] * a[j];
                p[i] = pi;
                sq += a[i] * pi;
            }
            s[0] = sq;
        });
    }

    /// <summary>δ = Σₖ aₖτₖ per block, as a new tensor shaped like the task vectors.</summary>
    public static Tensor Delta(IBackend be, AwdBlockOps ops, IReadOnlyList<Tensor> taus, ReadOnlySpan<double> coefficients, int k)
    {
        var delta = be.Zeros(taus[0].Shape.ToArray());
        var column = new double[ops.Blocks];
        for (int j = 0; j < taus.Count; j++)
        {
            for (int b = 0; b < column.Length; b++) column[b] = coefficients[b * k + j];
            ops.AddScaled(column, taus[j], delta);
        }
        return delta;
    }
}

/// <summary>
/// The full-space iteration: δ is kept as one float32 tensor per part with its optimiser state,
/// and every iteration is one pass over the task vectors (the step of each part, then p = Tδ and
/// s = ‖δ‖² of the new δ). Needed for Adam, whose per-coordinate scaling leaves span{τₖ}; gd and
/// sgd run here too so the coefficient path can be checked against it.
/// </summary>
internal sealed class AwdFullSpaceSolver : IDisposable
{
    private readonly IBackend _be;
    private readonly IAwdTaskVectors _source;
    private readonly AwdBlockOps _ops;
    private readonly int _k;
    private readonly AwdSettings _settings;
    private readonly Tensor?[] _delta, _m, _v, _buffer;
    private double[]? _gramTau;

    /// <summary>Creates a solver over <paramref name="source"/>; <paramref name="ops"/> defines the blocks.</summary>
    public AwdFullSpaceSolver(IBackend be, IAwdTaskVectors source, AwdBlockOps ops, int k, AwdSettings settings)
    {
        if (ops.Blocks > 1 && source.PartCount != 1) throw new ArgumentException("row blocks need a single part");
        _be = be;
        _source = source;
        _ops = ops;
        _k = k;
        _settings = settings;
        _delta = new Tensor?[source.PartCount];
        _m = new Tensor?[source.PartCount];
        _v = new Tensor?[source.PartCount];
        _buffer = new Tensor?[source.PartCount];
    }

    /// <summary>Runs the iteration from δ = 0 (the Gram pass, then one pass per iteration).</summary>
    public AwdSummary Run()
    {
        _gramTau ??= TaskVectorGram.Compute(_source, _ops, _k);
        int blocks = _ops.Blocks;
        var coefficient = new double[blocks];
        var dots = new double[blocks * _k];
        return AwdLoop.Run(_gramTau, blocks, _k, 1.0 / blocks, _settings, (it, beta, gamma, p, s) =>
        {
            Array.Clear(p);
            Array.Clear(s);
            for (int part = 0; part < _source.PartCount; part++)
                _source.Visit(part, taus =>
                {
                    var delta = _delta[part] ??= _be.Zeros(taus[0].Shape.ToArray());
                    using (var grad = _be.Zeros(taus[0].Shape.ToArray()))
                    {
                        WriteGradient(taus, delta, beta, gamma, grad, coefficient);
                        Update(part, it, delta, grad);
                    }
                    AddStatistics(taus, delta, p, s, dots);
                });
        });
    }

    /// <summary>Takes the final δ of <paramref name="part"/> (the caller disposes it); null when the part was never visited.</summary>
    public Tensor? TakeDelta(int part)
    {
        var d = _delta[part];
        _delta[part] = null;
        return d;
    }

    /// <summary>
    /// L at the given δ (one tensor per part) and its gradient, written into <paramref name="grad"/>:
    /// the analytic gradient the iteration uses, exposed so it can be checked against finite differences.
    /// </summary>
    public double Gradient(IReadOnlyList<Tensor> delta, IReadOnlyList<Tensor> grad)
    {
        _gramTau ??= TaskVectorGram.Compute(_source, _ops, _k);
        int blocks = _ops.Blocks;
        var p = new double[blocks * _k];
        var s = new double[blocks];
        var dots = new double[blocks * _k];
        for (int part = 0; part < _source.PartCount; part++)
            _source.Visit(part, taus => AddStatistics(taus, delta[part], p, s, dots));
        var beta = new double[blocks * _k];
        var gamma = new double[blocks];
        double orth = AwdLoop.Evaluate(_gramTau, p, s, blocks, _k, 1.0 / blocks, _settings.Alpha, beta, gamma, []);
        var coefficient = new double[blocks];
        for (int part = 0; part < _source.PartCount; part++)
            _source.Visit(part, taus =>
            {
                _be.Fill(grad[part], 0f);
                WriteGradient(taus, delta[part], beta, gamma, grad[part], coefficient);
            });
        return orth + _settings.Alpha * s.Sum(x => Math.Sqrt(Math.Max(x, 0)));
    }

    /// <summary>grad ← −Σₖ βₖτₖ + γδ per block (grad starts at 0).</summary>
    private void WriteGradient(IReadOnlyList<Tensor> taus, Tensor delta, double[] beta, double[] gamma, Tensor grad, double[] coefficient)
    {
        for (int j = 0; j < _k; j++)
        {
            for (int b = 0; b < coefficient.Length; b++) coefficient[b] = -beta[b * _k + j];
            _ops.AddScaled(coefficient, taus[j], grad);
        }
        _ops.AddScaled(gamma, delta, grad);
    }

    private void Update(int part, int it, Tensor delta, Tensor grad)
    {
        var s = _settings;
        switch (s.Optimizer)
        {
            case AwdOptimizer.Gd:
                if (s.WeightDecay != 0) _be.Axpy((float)s.WeightDecay, delta, grad);
                _be.Axpy((float)-s.Lr, grad, delta);
                break;
            case AwdOptimizer.Sgd:
                if (s.WeightDecay != 0) _be.Axpy((float)s.WeightDecay, delta, grad);
                if (_buffer[part] is not { } buf)
                {
                    buf = _buffer[part] = _be.Empty(delta.Shape.ToArray());
                    _be.Copy(grad, buf);
                }
                else
                {
                    _be.Scale(buf, (float)s.Momentum, buf);
                    _be.Add(buf, grad, buf);
                }
                _be.Axpy((float)-s.Lr, buf, delta);
                break;
            case AwdOptimizer.Adam:
                var m = _m[part] ??= _be.Zeros(delta.Shape.ToArray());
                var v = _v[part] ??= _be.Zeros(delta.Shape.ToArray());
                _be.AdamStep(delta, grad, m, v, it, new AdamSettings((float)s.Lr, WeightDecay: (float)s.WeightDecay));
                break;
        }
    }

    /// <summary>p += Tδ and s += ‖δ‖² per block, for one part.</summary>
    private void AddStatistics(IReadOnlyList<Tensor> taus, Tensor delta, double[] p, double[] s, double[] dots)
    {
        Tensor[] d = [delta];
        _ops.Dots(taus, d, dots);
        for (int i = 0; i < p.Length; i++) p[i] += dots[i];
        _ops.Dots(d, d, dots);
        for (int b = 0; b < s.Length; b++) s[b] += dots[b];
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var arr in new[] { _delta, _m, _v, _buffer })
            for (int i = 0; i < arr.Length; i++)
            {
                arr[i]?.Dispose();
                arr[i] = null;
            }
    }
}
