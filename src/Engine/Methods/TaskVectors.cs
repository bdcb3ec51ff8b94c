using System.Text.RegularExpressions;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// The task-vector toolkit of every task-vector method: τᵢ = θᵢ − θ₀ of a group's experts (all at
/// once, one at a time, or streamed through <see cref="MergeContext.Load"/>), their (mean) sum with
/// θ₀ added back, and <c>exclude_keys</c>, the regexes that keep tensors out of a method's matrix rule.
/// </summary>
internal static class TaskVectors
{
    /// <summary>τᵢ = weight·(θᵢ − θ₀) for expert <paramref name="i"/> of the group (a new tensor).</summary>
    public static Tensor Of(TensorGroup g, int i, double weight = 1.0)
    {
        var be = g.Backend;
        var baseT = BaseOf(g);
        var tv = be.Empty(baseT.Shape.ToArray());
        be.Sub(g.Experts[i].Values, baseT, tv);
        if (weight != 1.0) be.Scale(tv, (float)weight, tv);
        return tv;
    }

    /// <summary>τᵢ of every expert of the group, in expert order: new tensors the caller disposes (for methods that need them together).</summary>
    public static List<Tensor> All(TensorGroup g)
    {
        var taus = new List<Tensor>(g.Experts.Count);
        try
        {
            for (int i = 0; i < g.Experts.Count; i++) taus.Add(Of(g, i));
            return taus;
        }
        catch
        {
            foreach (var t in taus) t.Dispose();
            throw;
        }
    }

    /// <summary>
    /// τ of tensor <paramref name="name"/> for expert <paramref name="model"/>, loaded through
    /// <paramref name="context"/> and made θ − <paramref name="theta0"/> in place (a new tensor).
    /// </summary>
    public static Tensor Load(MergeContext context, string name, int model, Tensor theta0)
    {
        var t = context.Load(name, model);
        context.Backend.Sub(t, theta0, t);
        return t;
    }

    /// <summary>Σᵢ wᵢτᵢ, divided by the number of experts when <paramref name="mean"/>; one τ is alive at a time.</summary>
    public static Tensor Sum(TensorGroup g, bool mean, Func<int, double>? weight = null)
    {
        var be = g.Backend;
        var total = be.Zeros(g.Shape.ToArray());
        for (int i = 0; i < g.Experts.Count; i++)
        {
            using var tv = Of(g, i, weight?.Invoke(i) ?? 1.0);
            be.Add(total, tv, total);
        }
        if (mean && g.Experts.Count > 0) be.Scale(total, 1f / g.Experts.Count, total);
        return total;
    }

    /// <summary>
    /// The rule for tensors a method does not merge as matrices (biases, norms, excluded keys):
    /// θ₀ + scale·mean wᵢτᵢ (a new tensor).
    /// </summary>
    public static Tensor BasePlusMean(TensorGroup g, double scale = 1.0, Func<int, double>? weight = null) =>
        AddToBase(g, Sum(g, mean: true, weight), scale);

    /// <summary>Turns <paramref name="delta"/> in place into θ₀ + scale·Δ and returns it.</summary>
    public static Tensor AddToBase(TensorGroup g, Tensor delta, double scale)
    {
        var be = g.Backend;
        if (scale != 1.0) be.Scale(delta, (float)scale, delta);
        be.Add(BaseOf(g), delta, delta);
        return delta;
    }

    /// <summary>
    /// The <c>exclude_keys</c> regexes of <paramref name="p"/>, compiled with a match timeout
    /// (<see cref="KeyPatterns"/>; culture-invariant, searched anywhere in a tensor name; an exact key matches
    /// itself). An invalid pattern is bad input.
    /// </summary>
    public static Regex[] ExcludeKeys(MergeParameters p) => p.List("exclude_keys").Select(pattern => KeyPatterns.Compile(pattern)).ToArray();

    /// <summary>True when one of <paramref name="exclude"/> matches <paramref name="name"/>; a match that times out is bad input.</summary>
    public static bool IsExcluded(IReadOnlyList<Regex> exclude, string name) => KeyPatterns.AnyMatch(exclude, name);

    /// <summary>True for a 2-D tensor with no zero dimension whose name no <paramref name="exclude"/> regex matches.</summary>
    public static bool IsIncludedMatrix(string name, ReadOnlySpan<int> shape, IReadOnlyList<Regex> exclude) =>
        shape.Length == 2 && shape[0] != 0 && shape[1] != 0 && !IsExcluded(exclude, name);

    private static Tensor BaseOf(TensorGroup g) =>
        g.Base ?? throw new InvalidOperationException($"tensor {g.Name}: task vectors need a base tensor");
}
