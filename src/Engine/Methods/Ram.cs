using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// mergekit's <c>ram</c> (Reinforced Agent Merging): per element, a task-vector entry with |τᵢ| &gt; ε that no
/// other expert shares is kept whole, entries several experts share are averaged over those experts;
/// θ = θ₀ + Σᵢ contributionᵢ.
/// </summary>
public sealed class RamMethod : IMergeMethod
{
    /// <inheritdoc />
    public string Name => "ram";

    /// <inheritdoc />
    public string Description => "keep task-vector entries only one expert has, average those several share (|τ| > ε counts)";

    /// <inheritdoc />
    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Float("epsilon", 1e-5, "entries with |τ| ≤ epsilon do not contribute", range: ParameterRange.NonNegative),
    ];

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    /// <inheritdoc />
    public Tensor Merge(TensorGroup g) => Merge(g, (float)g.Float("epsilon"), null);

    /// <summary>
    /// θ₀ + Σᵢ RAM contributions, the unique entries of expert i scaled by <paramref name="uniqueScale"/>(i,
    /// its shared count, its unique count) when given (RAM+), else kept as they are.
    /// </summary>
    internal static Tensor Merge(TensorGroup g, float epsilon, Func<int, double, double, double>? uniqueScale)
    {
        var be = g.Backend;
        var baseT = g.Base ?? throw new InvalidOperationException("ram needs a base tensor");
        var shape = baseT.Shape.ToArray();
        var taus = TaskVectors.All(g);
        try
        {
            using var counts = be.Zeros(shape);
            foreach (var tau in taus) be.CountMagnitudeAbove(tau, epsilon, counts);
            var scales = Enumerable.Repeat(1.0, taus.Count).ToArray();
            if (uniqueScale is not null && taus.Count > 0)
            {
                using var unique = be.Empty(shape);
                using var shared = be.Empty(shape);
                for (int k = 0; k < taus.Count; k++)
                {
                    be.RamClassify(taus[k], epsilon, counts, unique, shared);
                    scales[k] = uniqueScale(k, be.Sum(shared), be.Sum(unique));
                }
                g.Diagnostics["ramplus_lambda"] = scales;
            }
            var result = be.Zeros(shape);
            for (int k = 0; k < taus.Count; k++) be.RamAccumulate(taus[k], epsilon, counts, (float)scales[k], result);
            be.Add(result, baseT, result);
            return result;
        }
        finally
        {
            foreach (var t in taus) t.Dispose();
        }
    }
}
