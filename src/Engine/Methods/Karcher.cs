using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// mergekit's <c>karcher</c>: the Riemannian (Karcher) mean of the models' directions on the unit sphere,
/// each tensor one vector, equal weights, by at most <c>max_iter</c> fixed-point steps
/// u ← exp_u(Σ aᵢ·θᵢ/sin θᵢ·(uᵢ − cos θᵢ·u)), scaled by the mean norm. The base model, when given, is one
/// more point of the mean (as in mergekit, where it is one of the gathered tensors).
/// </summary>
public sealed class KarcherMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "karcher";

    /// <inheritdoc />
    public string Description => "Karcher (Riemannian) mean of the models' directions, times their mean norm";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Int("max_iter", 10, "maximum fixed-point iterations", min: 1, max: 1_000_000),
        ParameterDef.Float("tol", 1e-5, "convergence tolerance (norms, angles and step lengths below it count as zero)", range: ParameterRange.NonNegative),
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
        var points = g.Experts.Select(e => e.Values).ToList();
        if (g.Base is { } baseT) points.Add(baseT);
        var result = be.Zeros(shape);
        if (points.Count == 1)
        {
            be.Copy(points[0], result);
            return result;
        }
        int maxIter = g.Parameters.Int("max_iter", g.Name, g.Depth);
        double tol = g.Float("tol");
        int n = points.Count;
        var norms = points.Select(p => Math.Sqrt(be.SumSquares(p))).ToArray();
        var valid = Enumerable.Range(0, n).Where(i => norms[i] > tol).ToArray();
        if (valid.Length == 0) return result;
        double alphaSum = valid.Length / (double)n;
        var alpha = valid.Select(_ => 1.0 / n / alphaSum).ToArray();
        var units = valid.Select(i => points[i]).ToList();
        var inverseNorm = valid.Select(i => 1 / norms[i]).ToArray();

        var u = result;
        for (int k = 0; k < units.Count; k++) be.Axpy((float)(alpha[k] * inverseNorm[k]), units[k], u);
        double normU = Math.Sqrt(be.SumSquares(u));
        if (normU < tol)
        {
            be.Scale(units[0], (float)inverseNorm[0], u);
        }
        else
        {
            be.Scale(u, (float)(1 / normU), u);
        }

        using var step = be.Empty(shape);
        using var towards = be.Empty(shape);
        var dots = new double[units.Count];
        for (int iter = 0; iter < maxIter; iter++)
        {
            be.BlockDot([u], units, (int)u.Length, dots);
            be.Fill(step, 0f);
            for (int k = 0; k < units.Count; k++)
            {
                double cos = Math.Clamp(dots[k] * inverseNorm[k], -1, 1), theta = Math.Acos(cos);
                if (theta < tol) continue;
                // uₖ − cos θ·u is formed before scaling by θ/sin θ, so that an antipodal point cancels exactly.
                be.Scale(units[k], (float)inverseNorm[k], towards);
                be.Axpy((float)-cos, u, towards);
                be.Axpy((float)(alpha[k] * theta / Math.Sin(theta)), towards, step);
            }
            double normStep = Math.Sqrt(be.SumSquares(step));
            if (normStep < tol) break;
            be.Scale(u, (float)Math.Cos(normStep), u);
            be.Axpy((float)(Math.Sin(normStep) / normStep), step, u);
            double norm = Math.Sqrt(be.SumSquares(u));
            if (norm > tol) be.Scale(u, (float)(1 / norm), u);
        }
        be.Scale(u, (float)(norms.Sum() / n), u);
        return u;
    }
}
