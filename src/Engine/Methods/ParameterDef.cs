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
/// A parameter a method declares: the one place its name, type, default and documentation live,
/// so config validation, reports and help come from the same definition.
/// </summary>
/// <param name="Name">Config key.</param>
/// <param name="Kind">Value type.</param>
/// <param name="Default">Value when not given (null: required).</param>
/// <param name="Doc">One-line description.</param>
/// <param name="PerModel">True when it may be set per model (<c>models[i].parameters</c>), like mergekit's tensor parameters.</param>
/// <param name="Choices">Allowed values of a String parameter.</param>
public sealed record ParameterDef(string Name, ParameterKind Kind, object? Default, string Doc, bool PerModel = false, string[]? Choices = null)
{
    /// <summary>A float parameter.</summary>
    public static ParameterDef Float(string name, double def, string doc, bool perModel = false) => new(name, ParameterKind.Float, def, doc, perModel);

    /// <summary>An integer parameter.</summary>
    public static ParameterDef Int(string name, int def, string doc) => new(name, ParameterKind.Int, def, doc);

    /// <summary>A boolean parameter.</summary>
    public static ParameterDef Bool(string name, bool def, string doc) => new(name, ParameterKind.Bool, def, doc);

    /// <summary>A string parameter with a fixed set of choices.</summary>
    public static ParameterDef Choice(string name, string def, string doc, params string[] choices) => new(name, ParameterKind.String, def, doc, false, choices);

    /// <summary>A string parameter (free text, e.g. a path).</summary>
    public static ParameterDef Text(string name, string? def, string doc) => new(name, ParameterKind.String, def, doc);

    /// <summary>A string-list parameter.</summary>
    public static ParameterDef List(string name, string doc) => new(name, ParameterKind.StringList, Array.Empty<string>(), doc);
}
