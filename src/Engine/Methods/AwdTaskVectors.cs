using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// The task vectors of one AWD problem, split into parts: every included tensor of the model
/// (model granularity, streamed from the models) or a single tensor (tensor and row granularity).
/// </summary>
internal interface IAwdTaskVectors
{
    /// <summary>Number of parts.</summary>
    int PartCount { get; }

    /// <summary>Calls <paramref name="body"/> with τ₁..τ_K of part <paramref name="part"/>; the tensors are valid only during the call.</summary>
    void Visit(int part, Action<IReadOnlyList<Tensor>> body);
}

/// <summary>Task vectors already on the backend (borrowed, never disposed here).</summary>
internal sealed class InMemoryTaskVectors(IReadOnlyList<IReadOnlyList<Tensor>> parts) : IAwdTaskVectors
{
    /// <inheritdoc />
    public int PartCount => parts.Count;

    /// <inheritdoc />
    public void Visit(int part, Action<IReadOnlyList<Tensor>> body) => body(parts[part]);
}

/// <summary>Task vectors loaded on demand through <see cref="MergeContext.Load"/>: τᵢ = θᵢ − θ₀, one tensor at a time.</summary>
internal sealed class StreamedTaskVectors(MergeContext context, IReadOnlyList<string> names) : IAwdTaskVectors
{
    /// <inheritdoc />
    public int PartCount => names.Count;

    /// <inheritdoc />
    public void Visit(int part, Action<IReadOnlyList<Tensor>> body)
    {
        var taus = new List<Tensor>(context.ExpertCount);
        try
        {
            using (var theta0 = context.Load(names[part], -1))
                for (int e = 0; e < context.ExpertCount; e++) taus.Add(TaskVectors.Load(context, names[part], e, theta0));
            body(taus);
        }
        finally
        {
            foreach (var t in taus) t.Dispose();
        }
    }
}

/// <summary>
/// Reductions and scalings per AWD block, written with <see cref="IBackend"/> ops only. A block is
/// a whole part (model and tensor granularity) or one row of a 2-D part (row granularity). The
/// per-block dot products are one <see cref="IMergeOps.BlockDot"/> (float64); a per-row scale is an
/// outer product coefficient·1ᵀ by GEMM followed by an elementwise product.
/// </summary>
internal sealed class AwdBlockOps : IDisposable
{
    private readonly IBackend _be;
    private readonly int _rows, _cols;
    private readonly Tensor? _onesRow, _scratch, _rowCoefficients;
    private readonly float[]? _host;

    private AwdBlockOps(IBackend be, int rows, int cols, bool rowwise)
    {
        _be = be;
        _rows = rows;
        _cols = cols;
        if (!rowwise) return;
        _onesRow = be.Empty(1, cols);
        be.Fill(_onesRow, 1f);
        _scratch = be.Empty(rows, cols);
        _rowCoefficients = be.Empty(rows, 1);
        _host = new float[rows];
    }

    /// <summary>One block per part.</summary>
    public static AwdBlockOps Whole(IBackend be) => new(be, 1, 0, rowwise: false);

    /// <summary>One block per row of a rows×cols tensor.</summary>
    public static AwdBlockOps PerRow(IBackend be, int rows, int cols) => new(be, rows, cols, rowwise: true);

    /// <summary>Blocks per part.</summary>
    public int Blocks => _rows;

    /// <summary>dst[(b·|xs| + i)·|ys| + j] = ⟨xsᵢ, ysⱼ⟩ over block b, in float64 (a Gram per block when xs and ys are the same list).</summary>
    public void Dots(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> ys, Span<double> dst)
    {
        if (_scratch is not null) CheckShape(xs[0]);
        _be.BlockDot(xs, ys, _scratch is null ? checked((int)xs[0].Length) : _cols, dst);
    }

    /// <summary>y ← y + coefficient[b]·x on every block b.</summary>
    public void AddScaled(ReadOnlySpan<double> coefficient, Tensor x, Tensor y)
    {
        if (_scratch is null)
        {
            if (coefficient[0] != 0) _be.Axpy((float)coefficient[0], x, y);
            return;
        }
        CheckShape(x);
        for (int r = 0; r < _rows; r++) _host![r] = (float)coefficient[r];
        _be.Upload(_host, _rowCoefficients!);
        _be.Gemm(_rowCoefficients!, false, _onesRow!, false, _scratch);
        _be.Mul(_scratch, x, _scratch);
        _be.Add(y, _scratch, y);
    }

    private void CheckShape(Tensor t)
    {
        if (t.Rank != 2 || t.Rows != _rows || t.Cols != _cols)
            throw new ArgumentException($"{t} is not {_rows}x{_cols}");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _onesRow?.Dispose();
        _scratch?.Dispose();
        _rowCoefficients?.Dispose();
    }
}

/// <summary>The Gram G_τ = TTᵀ of the task vectors, per block, summed over parts in float64: the one pass over the experts.</summary>
internal static class TaskVectorGram
{
    /// <summary>Returns blocks×K×K row-major Grams.</summary>
    public static double[] Compute(IAwdTaskVectors source, AwdBlockOps ops, int k)
    {
        var gram = new double[ops.Blocks * k * k];
        var part = new double[gram.Length];
        for (int i = 0; i < source.PartCount; i++)
            source.Visit(i, taus =>
            {
                ops.Dots(taus, taus, part);
                for (int j = 0; j < gram.Length; j++) gram[j] += part[j];
            });
        return gram;
    }
}
