using System.Globalization;

namespace TaskMerge.Engine.Methods;

/// <summary>The value type of a method parameter.</summary>
public enum ParameterKind
{
    /// <summary>A real number; accepts gradients and conditionals.</summary>
    Float,
    /// <summary>An integer.</summary>
    Int,
    /// <summary>true/false.</summary>
    Bool,
    /// <summary>A string, optionally restricted to <see cref="ParameterDef.Choices"/>.</summary>
    String,
    /// <summary>A list of strings (e.g. regexes).</summary>
    StringList,
}

/// <summary>
/// The values a numeric parameter accepts: always finite, between <paramref name="Min"/> and
/// <paramref name="Max"/> (each bound included unless marked open).
/// </summary>
/// <param name="Min">Lower bound (−∞: none).</param>
/// <param name="Max">Upper bound (+∞: none).</param>
/// <param name="MinOpen">True when <paramref name="Min"/> itself is not allowed.</param>
/// <param name="MaxOpen">True when <paramref name="Max"/> itself is not allowed.</param>
public sealed record ParameterRange(double Min, double Max, bool MinOpen = false, bool MaxOpen = false)
{
    /// <summary>Any finite number.</summary>
    public static ParameterRange Finite { get; } = new(double.NegativeInfinity, double.PositiveInfinity);

    /// <summary>Finite and ≥ 0.</summary>
    public static ParameterRange NonNegative { get; } = new(0, double.PositiveInfinity);

    /// <summary>Finite and &gt; 0.</summary>
    public static ParameterRange Positive { get; } = new(0, double.PositiveInfinity, MinOpen: true);

    /// <summary>[0, 1].</summary>
    public static ParameterRange Fraction { get; } = new(0, 1);

    /// <summary>[<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static ParameterRange Between(double min, double max) => new(min, max);

    /// <summary>True when <paramref name="v"/> is finite and inside the bounds.</summary>
    public bool Contains(double v) =>
        double.IsFinite(v) && (MinOpen ? v > Min : v >= Min) && (MaxOpen ? v < Max : v <= Max);

    /// <summary>Interval notation: "[0, 1]", "(0, ∞)", "finite".</summary>
    public override string ToString()
    {
        if (double.IsNegativeInfinity(Min) && double.IsPositiveInfinity(Max)) return "finite";
        string lo = double.IsNegativeInfinity(Min) ? "(−∞" : (MinOpen ? "(" : "[") + Format(Min);
        string hi = double.IsPositiveInfinity(Max) ? "∞)" : Format(Max) + (MaxOpen ? ")" : "]");
        return $"{lo}, {hi}";
    }

    private static string Format(double v) => v switch
    {
        int.MaxValue => "2³¹−1",
        int.MinValue => "−2³¹",
        _ => v.ToString("R", CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// A parameter a method declares: the one place its name, type, valid range, default and
/// documentation live, so config validation, reports, help and the contract's table come from the
/// same definition.
/// </summary>
/// <param name="Name">Config key.</param>
/// <param name="Kind">Value type.</param>
/// <param name="Default">Value when not given (null: required).</param>
/// <param name="Doc">One-line description.</param>
/// <param name="PerModel">True when it may be set per model (<c>models[i].parameters</c>), like mergekit's tensor parameters.</param>
/// <param name="Choices">Allowed values of a String parameter.</param>
/// <param name="Range">Accepted values of a Float or Int parameter (null: any finite number; an Int also within int).</param>
public sealed record ParameterDef(string Name, ParameterKind Kind, object? Default, string Doc, bool PerModel = false, string[]? Choices = null,
    ParameterRange? Range = null)
{
    /// <summary>The accepted values of a numeric parameter: <see cref="Range"/>, else finite (and within int for an Int).</summary>
    public ParameterRange ValidRange => Range ?? (Kind == ParameterKind.Int ? ParameterRange.Between(int.MinValue, int.MaxValue) : ParameterRange.Finite);

    /// <summary>A float parameter; <paramref name="range"/> null accepts any finite number.</summary>
    public static ParameterDef Float(string name, double def, string doc, bool perModel = false, ParameterRange? range = null) =>
        new(name, ParameterKind.Float, def, doc, perModel, Range: range);

    /// <summary>An integer parameter accepting [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static ParameterDef Int(string name, int def, string doc, int min = int.MinValue, int max = int.MaxValue) =>
        new(name, ParameterKind.Int, def, doc, Range: ParameterRange.Between(min, max));

    /// <summary>A boolean parameter.</summary>
    public static ParameterDef Bool(string name, bool def, string doc) => new(name, ParameterKind.Bool, def, doc);

    /// <summary>A string parameter with a fixed set of choices.</summary>
    public static ParameterDef Choice(string name, string def, string doc, params string[] choices) => new(name, ParameterKind.String, def, doc, false, choices);

    /// <summary>A string parameter (free text, e.g. a path).</summary>
    public static ParameterDef Text(string name, string? def, string doc) => new(name, ParameterKind.String, def, doc);

    /// <summary>A string-list parameter.</summary>
    public static ParameterDef List(string name, string doc) => new(name, ParameterKind.StringList, Array.Empty<string>(), doc);
}
