using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// mergekit's <c>multislerp</c>: barycentric interpolation of any number of models (or, with a
/// <c>base_model</c>, of their task vectors) on the hypersphere, each tensor one vector. mergekit projects the
/// unit vectors into the tangent space at their normalised weighted mean, sums them there and maps back; the
/// weighted tangent sum is zero by construction, so the result is the direction of Σ wᵢ·xᵢ/(‖xᵢ‖ + eps)
/// times Σ wᵢ‖xᵢ‖, which is what is computed here. When that weighted mean vanishes, two models are mixed
/// linearly (Σ wᵢ·xᵢ) and more are bad input.
/// </summary>
public sealed class MultiSlerpMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "multislerp";

    /// <inheritdoc />
    public string Description => "spherical barycentre of N models (of their task vectors with a base), times the weighted mean norm";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        new ParameterDef("weight", ParameterKind.Float, null, "per-model weight (required)", PerModel: true),
        ParameterDef.Bool("normalize_weights", true, "divide the weights by their sum"),
        ParameterDef.Float("eps", 1e-8, "added to norms before dividing; weighted means shorter than it count as zero", range: ParameterRange.NonNegative),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => false;

    /// <inheritdoc />
    public bool DropsBaseFromModels => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g)
    {
        var be = g.Backend;
        var shape = g.Shape.ToArray();
        var result = be.Zeros(shape);
        if (g.Experts.Count == 0)
        {
            be.Copy(g.Base!, result);
            return result;
        }
        if (g.Experts.Count == 1)
        {
            be.Copy(g.Experts[0].Values, result);
            return result;
        }
        int n = g.Experts.Count;
        var w = g.Experts.Select(e => g.Float("weight", e.Model)).ToArray();
        if (g.Bool("normalize_weights"))
        {
            double sum = w.Sum();
            for (int i = 0; i < n; i++) w[i] /= sum;
        }
        double eps = g.Float("eps");
        var offsets = new List<Tensor>(n);
        try
        {
            foreach (var e in g.Experts)
            {
                var x = be.Empty(shape);
                offsets.Add(x);
                if (g.Base is { } b) be.Sub(e.Values, b, x);
                else be.Copy(e.Values, x);
            }
            var norms = offsets.Select(x => Math.Sqrt(be.SumSquares(x))).ToArray();
            for (int i = 0; i < n; i++) be.Axpy((float)(w[i] / (norms[i] + eps)), offsets[i], result);
            double meanNorm = Math.Sqrt(be.SumSquares(result));
            if (meanNorm < eps)
            {
                if (n != 2)
                    throw new BadInputException($"tensor {g.Name}: multislerp's weighted mean of the unit vectors is zero (antipodal models with weights that cancel); change the weights");
                be.Fill(result, 0f);
                for (int i = 0; i < n; i++) be.Axpy((float)w[i], offsets[i], result);
            }
            else
            {
                double averageNorm = 0;
                for (int i = 0; i < n; i++) averageNorm += w[i] * norms[i];
                be.Scale(result, (float)(averageNorm / meanNorm), result);
            }
            if (g.Base is { } baseT) be.Add(result, baseT, result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
        finally
        {
            foreach (var x in offsets) x.Dispose();
        }
    }
}
