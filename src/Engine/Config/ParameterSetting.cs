using System.Globalization;

namespace TaskMerge.Engine.Config;

/// <summary>
/// A parameter value as written in a mergekit-style config: a scalar, a gradient list
/// (interpolated over layer depth), a list of strings, or a list of
/// <c>{filter, value}</c> conditions where the first matching filter wins.
/// </summary>
public abstract record ParameterSetting
{
    /// <summary>Where the setting was written, for error messages ("config.yml:12").</summary>
    public string Location { get; init; } = "";

    /// <summary>
    /// The value for a tensor at layer depth <paramref name="t"/> ∈ [0,1], or null when a
    /// conditional list has no matching filter (mergekit then falls through to the next scope).
    /// </summary>
    public abstract object? Evaluate(string tensorName, double t);
}

/// <summary>A single value: number, boolean or string, kept as written.</summary>
public sealed record ScalarSetting(string Text) : ParameterSetting
{
    /// <inheritdoc />
    public override object? Evaluate(string tensorName, double t) => Text;
}

/// <summary>A list of numbers linearly interpolated over layer depth, as mergekit's gradients.</summary>
public sealed record GradientSetting(double[] Values) : ParameterSetting
{
    /// <inheritdoc />
    public override object? Evaluate(string tensorName, double t)
    {
        double scaled = t * (Values.Length - 1);
        int i0 = (int)scaled;
        int i1 = Math.Min(Values.Length - 1, i0 + 1);
        double frac = scaled - i0;
        return ((1 - frac) * Values[i0] + frac * Values[i1]).ToString("R", CultureInfo.InvariantCulture);
    }
}

/// <summary>A list of strings: a string-list parameter's value (e.g. <c>exclude_keys</c>), or a stepped gradient of strings.</summary>
public sealed record StringListSetting(string[] Values) : ParameterSetting
{
    /// <inheritdoc />
    public override object? Evaluate(string tensorName, double t) => Values[(int)(t * (Values.Length - 1))];
}

/// <summary>One <c>{filter, value}</c> entry; a null or "*" filter matches every tensor.</summary>
public sealed record Condition(string? Filter, ParameterSetting Value);

/// <summary>A list of conditions; the first whose filter is a substring of the tensor name wins.</summary>
public sealed record ConditionalSetting(Condition[] Conditions) : ParameterSetting
{
    /// <inheritdoc />
    public override object? Evaluate(string tensorName, double t)
    {
        foreach (var c in Conditions)
            if (c.Filter is null || c.Filter == "*" || tensorName.Contains(c.Filter, StringComparison.Ordinal))
                return c.Value.Evaluate(tensorName, t);
        return null;
    }
}
