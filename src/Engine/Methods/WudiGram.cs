using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// The Gram form of one WUDI problem (docs/methods/wudi.md §1.1). With nᵢ = ‖τᵢ‖²_F and
/// Ĝᵢ = τᵢᵀτᵢ/nᵢ:
/// C = Σᵢ Ĝᵢ [in,in], D = Σᵢ τᵢĜᵢ [out,in], so that for
/// L(τ_m) = Σᵢ ‖(τ_m − τᵢ)τᵢᵀ‖²_F / nᵢ
/// ∇L = 2(τ_m C − D) and L = ⟨τ_m, τ_m C⟩ − 2⟨τ_m, D⟩ + Σᵢ nᵢ‖Ĝᵢ‖²_F.
/// Each Adam step then costs one [out,in]×[in,in] GEMM instead of the reference loop's N pairs of
/// [out,in]×[in,out] products, and no [out,out] buffer is ever formed.
/// <para>
/// A problem may be one matrix stored as several row blocks that share the input dimension (fused
/// q/k/v): nᵢ and Ĝᵢ then cover all blocks of task i, and D is kept per block. Because Adam is
/// elementwise, optimising the blocks side by side is the same as optimising the stacked matrix.
/// </para>
/// <para>
/// D is always formed as τᵢ·Ĝᵢ, the same association as the per-step product τ_m·C, so that for a
/// single task the gradient at τ_m = τ₁ is exactly zero (C = Ĝ₁ and D = τ₁Ĝ₁ come from the same GEMM
/// on the same operands). The alternative (τᵢτᵢᵀ)τᵢ/nᵢ is cheaper when out &lt; in, but it saves at
/// most a few percent of a 300-step run and loses that property.
/// </para>
/// </summary>
internal sealed class WudiGram : IDisposable
{
    private readonly ILinearAlgebraOps _be;
    private Tensor[]? _taskSum;

    private WudiGram(ILinearAlgebraOps be, Tensor c, Tensor[] d, Tensor[] taskSum)
    {
        _be = be;
        C = c;
        D = d;
        _taskSum = taskSum;
    }

    /// <summary>C = Σᵢ τᵢᵀτᵢ/nᵢ over the tasks with nᵢ &gt; 0.</summary>
    public Tensor C { get; }

    /// <summary>D = Σᵢ τᵢ(τᵢᵀτᵢ)/nᵢ, one tensor per row block.</summary>
    public Tensor[] D { get; }

    /// <summary>Number of tasks with a non-zero task vector (= tr C).</summary>
    public int TasksUsed { get; private set; }

    /// <summary>Model indices of the tasks skipped because τᵢ = 0 (the official code would divide by zero).</summary>
    public List<int> ZeroTasks { get; } = [];

    /// <summary>Σᵢ ‖τᵢτᵢᵀ‖²_F/nᵢ, the loss at τ_m = 0 (NaN unless requested at build time).</summary>
    public double LossConstant { get; private set; } = double.NaN;

    /// <summary>Number of rows of every block.</summary>
    public int[] BlockRows => D.Select(t => t.Rows).ToArray();

    /// <summary>
    /// Builds the Gram form from one task vector per model, reading one task at a time.
    /// </summary>
    /// <param name="be">Backend.</param>
    /// <param name="blockRows">Rows of each block.</param>
    /// <param name="cols">The shared input dimension.</param>
    /// <param name="models">Model index of each task (for diagnostics and messages).</param>
    /// <param name="taskVector">Returns the blocks of the task at a position of <paramref name="models"/>; the Gram disposes them.</param>
    /// <param name="withLossConstant">Also compute <see cref="LossConstant"/> (one extra reduction per task).</param>
    /// <param name="tensorName">For error messages.</param>
    public static WudiGram Build(ILinearAlgebraOps be, int[] blockRows, int cols, IReadOnlyList<int> models, Func<int, Tensor[]> taskVector,
        bool withLossConstant, string tensorName)
    {
        var c = be.Zeros(cols, cols);
        var d = blockRows.Select(r => be.Zeros(r, cols)).ToArray();
        var sum = blockRows.Select(r => be.Zeros(r, cols)).ToArray();
        var gram = new WudiGram(be, c, d, sum);
        var scaled = blockRows.Select(r => be.Empty(r, cols)).ToArray();
        var g = be.Empty(cols, cols);
        try
        {
            double constant = 0;
            for (int i = 0; i < models.Count; i++)
            {
                var tau = taskVector(i);
                try
                {
                    if (tau.Length != blockRows.Length)
                        throw new ArgumentException($"task {i} has {tau.Length} blocks, expected {blockRows.Length}");
                    double n = 0;
                    for (int b = 0; b < tau.Length; b++)
                    {
                        be.Add(sum[b], tau[b], sum[b]);
                        n += be.SumSquares(tau[b]);
                    }
                    if (!double.IsFinite(n))
                        throw new BadInputException($"tensor {tensorName}: the task vector of model {models[i]} has non-finite values");
                    float invNorm = (float)(1 / Math.Sqrt(n));
                    if (n == 0 || !float.IsFinite(invNorm))
                    {
                        gram.ZeroTasks.Add(models[i]);
                        continue;
                    }
                    bool first = gram.TasksUsed == 0;
                    for (int b = 0; b < tau.Length; b++)
                    {
                        be.Scale(tau[b], invNorm, scaled[b]);
                        be.Syrk(scaled[b], true, g, 1f, b == 0 ? 0f : 1f);
                    }
                    if (first) be.Copy(g, c);
                    else be.Add(c, g, c);
                    for (int b = 0; b < tau.Length; b++)
                        be.Gemm(tau[b], false, g, false, d[b], 1f, first ? 0f : 1f);
                    if (withLossConstant) constant += n * be.SumSquares(g);
                    gram.TasksUsed++;
                }
                finally
                {
                    foreach (var t in tau) t.Dispose();
                }
            }
            if (withLossConstant) gram.LossConstant = constant;
            return gram;
        }
        catch
        {
            gram.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in scaled) t.Dispose();
            g.Dispose();
        }
    }

    /// <summary>Σᵢ τᵢ per block (all tasks, zero ones included); the caller owns the tensors afterwards.</summary>
    public Tensor[] TakeTaskSum()
    {
        var s = _taskSum ?? throw new InvalidOperationException("the task-vector sum was already taken");
        _taskSum = null;
        return s;
    }

    /// <summary>g ← ∇L(m) = 2(m·C − D), blockwise: one GEMM and one axpy per block.</summary>
    public void Gradient(Tensor[] m, Tensor[] g)
    {
        for (int b = 0; b < D.Length; b++)
        {
            _be.Gemm(m[b], false, C, false, g[b], 2f, 0f);
            _be.Axpy(-2f, D[b], g[b]);
        }
    }

    /// <summary>
    /// L(m) from the gradient <paramref name="g"/> = ∇L(m) already computed for the step:
    /// L = ⟨m, g⟩/2 − ⟨m, D⟩ + <see cref="LossConstant"/> (two float64 dot products per block, no GEMM).
    /// </summary>
    public double Loss(Tensor[] m, Tensor[] g)
    {
        double loss = LossConstant;
        for (int b = 0; b < D.Length; b++) loss += _be.Dot(m[b], g[b]) / 2 - _be.Dot(m[b], D[b]);
        return loss;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        C.Dispose();
        foreach (var t in D) t.Dispose();
        if (_taskSum is not null) foreach (var t in _taskSum) t.Dispose();
        _taskSum = null;
    }
}
