using TaskMerge.Engine.Optim;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

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
