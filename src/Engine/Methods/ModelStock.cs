using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// Model Stock (Jang et al.): θ = t·mean(θᵢ) + (1 − t)·θ₀ with t = N·c / (1 + (N − 1)·c), c the mean
/// pairwise cosine of the task vectors, per tensor or per row (<c>filter_wise</c>); mergekit's `model_stock`.
/// </summary>
public sealed class ModelStockMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "model_stock";

    /// <inheritdoc />
    public string Description => "Model Stock: interpolate base → expert mean by t from the mean pairwise cosine of the task vectors";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Bool("filter_wise", false, "one t per row (last dimension) instead of one per tensor"),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        var be = g.Backend;
        var baseT = g.Base ?? throw new InvalidOperationException("model_stock needs a base tensor");
        var shape = baseT.Shape.ToArray();
        int n = g.Experts.Count;
        if (n == 0)
        {
            var copy = be.Empty(shape);
            be.Copy(baseT, copy);
            return copy;
        }
        if (n < 2)
            throw new BadInputException($"tensor {g.Name}: model_stock needs at least 2 models besides the base model, got {n}");

        int length = (int)baseT.Length;
        int rowLength = g.Bool("filter_wise") && shape.Length >= 2 ? shape[^1] : length;
        int blocks = rowLength == 0 ? 0 : length / rowLength;
        var cosines = new double[blocks];
        var offsets = TaskVectors.All(g);
        try
        {
            if (blocks > 0)
            {
                var gram = new double[blocks * n * n];
                be.BlockDot(offsets, offsets, rowLength, gram);
                for (int b = 0; b < blocks; b++)
                {
                    int o = b * n * n;
                    double sum = 0;
                    for (int i = 0; i < n; i++)
                        for (int j = i + 1; j < n; j++)
                        {
                            double norms = Math.Sqrt(gram[o + i * n + i]) * Math.Sqrt(gram[o + j * n + j]);
                            sum += Math.Clamp(gram[o + i * n + j] / Math.Max(norms, 1e-6), -1, 1);
                        }
                    cosines[b] = sum / (n * (n - 1) / 2);
                }
            }
        }
        finally
        {
            foreach (var t in offsets) t.Dispose();
        }

        var ts = cosines.Select(c => n * c / (1 + (n - 1) * c)).ToArray();
        var mixed = be.Zeros(shape);
        foreach (var e in g.Experts) be.Add(mixed, e.Values, mixed);
        be.Scale(mixed, 1f / n, mixed);
        be.Sub(mixed, baseT, mixed);
        if (blocks == 1)
        {
            be.Scale(mixed, (float)ts[0], mixed);
            g.Diagnostics["model_stock_t"] = ts[0];
        }
        else if (blocks > 1)
        {
            var perElement = new float[length];
            for (int b = 0; b < blocks; b++) perElement.AsSpan(b * rowLength, rowLength).Fill((float)ts[b]);
            using var scale = be.FromHost(perElement, shape);
            be.Mul(mixed, scale, mixed);
            g.Diagnostics["model_stock_t_mean"] = ts.Average();
        }
        be.Add(baseT, mixed, mixed);
        return mixed;
    }
}
