using System.Globalization;
using TaskMerge.Engine.Config;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// Resolves a method's parameters for one tensor with mergekit's precedence:
/// <c>models[i].parameters</c> (per-model parameters only) over top-level <c>parameters</c> over the
/// declared default; for a slice, the source's over the slice's over the module's over the top level. Every given value is type-checked once, at plan time.
/// </summary>
public sealed class MergeParameters
{
    private readonly Dictionary<string, ParameterDef> _defs;
    private readonly IReadOnlyList<IReadOnlyDictionary<string, ParameterSetting>> _globals;
    private readonly IReadOnlyList<IReadOnlyDictionary<string, ParameterSetting>> _perModel;

    /// <summary>Builds and validates the parameters of <paramref name="defs"/> from config settings.</summary>
    /// <param name="defs">The method's declared parameters.</param>
    /// <param name="global">Top-level <c>parameters</c>.</param>
    /// <param name="perModel">Each expert's <c>parameters</c>, by expert index.</param>
    /// <param name="warnings">Receives one line per unknown parameter.</param>
    public MergeParameters(IEnumerable<ParameterDef> defs, IReadOnlyDictionary<string, ParameterSetting> global,
        IReadOnlyList<IReadOnlyDictionary<string, ParameterSetting>> perModel, ICollection<string> warnings)
        : this(defs, [global], perModel, warnings) { }

    /// <summary>
    /// Builds and validates the parameters from scopes of model-independent settings, innermost first
    /// (a slice's <c>parameters</c>, its module's, the top level): a scope whose setting evaluates to nothing
    /// for a tensor (no filter matches) falls through to the next, as in mergekit.
    /// </summary>
    public MergeParameters(IEnumerable<ParameterDef> defs, IReadOnlyList<IReadOnlyDictionary<string, ParameterSetting>> scopes,
        IReadOnlyList<IReadOnlyDictionary<string, ParameterSetting>> perModel, ICollection<string> warnings)
    {
        _defs = defs.ToDictionary(d => d.Name);
        _globals = scopes;
        _perModel = perModel;
        foreach (var scope in scopes)
            foreach (var (name, setting) in scope) Check(name, setting, false, warnings);
        foreach (var ps in perModel)
            foreach (var (name, setting) in ps) Check(name, setting, true, warnings);
    }

    /// <summary>The declared parameters.</summary>
    public IEnumerable<ParameterDef> Definitions => _defs.Values;

    /// <summary>True when the config gives <paramref name="name"/> (top level or for any model) rather than leaving the default.</summary>
    public bool IsSet(string name) => _globals.Any(g => g.ContainsKey(name)) || _perModel.Any(p => p.ContainsKey(name));

    /// <summary>A float parameter for a tensor; <paramref name="model"/> selects per-model values (-1: global only).</summary>
    public double Float(string name, string tensor = "", double t = 0, int model = -1) =>
        ParseFloat(Raw(name, tensor, t, model), name);

    /// <summary>An integer parameter.</summary>
    public int Int(string name, string tensor = "", double t = 0)
    {
        double v = Float(name, tensor, t);
        return v >= int.MinValue && v <= int.MaxValue && Math.Floor(v) == v ? (int)v
            : throw new BadInputException($"parameter '{name}': '{v}' is not an integer");
    }

    /// <summary>A boolean parameter.</summary>
    public bool Bool(string name, string tensor = "", double t = 0, int model = -1)
    {
        object v = Raw(name, tensor, t, model);
        if (v is bool b) return b;
        string s = Convert.ToString(v, CultureInfo.InvariantCulture)!;
        return ParameterParsing.TryParseBool(s, out b) ? b : throw new BadInputException($"parameter '{name}': '{s}' is not a boolean");
    }

    /// <summary>A string parameter; <paramref name="model"/> selects per-model values (-1: global only).</summary>
    public string String(string name, string tensor = "", double t = 0, int model = -1) =>
        Convert.ToString(Raw(name, tensor, t, model), CultureInfo.InvariantCulture) ?? "";

    /// <summary>
    /// The same config settings resolved against another method's declared parameters
    /// <paramref name="defs"/> (a wrapper method handing its settings to an inner method): settings
    /// named in <paramref name="drop"/> or not declared by <paramref name="defs"/> are left out silently.
    /// </summary>
    public MergeParameters For(IEnumerable<ParameterDef> defs, IReadOnlyCollection<string> drop)
    {
        var list = defs.ToList();
        var names = list.Select(d => d.Name).Where(n => !drop.Contains(n)).ToHashSet(StringComparer.Ordinal);
        Dictionary<string, ParameterSetting> Keep(IReadOnlyDictionary<string, ParameterSetting> d) =>
            d.Where(kv => names.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        return new MergeParameters(list, _globals.Select(Keep).ToArray(), [.. _perModel.Select(Keep)], new List<string>());
    }

    /// <summary>A string-list parameter (a single string counts as a one-element list; YAML null as an empty one).</summary>
    public IReadOnlyList<string> List(string name)
    {
        if (Global(name) is { } s)
            return s switch
            {
                StringListSetting l => l.Values,
                ScalarSetting { Text: "" or "~" or "null" or "Null" or "NULL" } => [],
                ScalarSetting sc => [sc.Text],
                _ => throw new BadInputException($"{s.Location}: parameter '{name}' must be a list of strings"),
            };
        return (string[])Def(name).Default!;
    }

    /// <summary>Resolved values of every global parameter (for reports).</summary>
    public Dictionary<string, object?> ResolvedGlobals()
    {
        var r = new Dictionary<string, object?>();
        foreach (var d in _defs.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            var s = Global(d.Name);
            if (d.PerModel && s is null) continue;
            if (d.Default is null && s is null) { r[d.Name] = null; continue; }
            if (s is not null and not ScalarSetting && d.Kind != ParameterKind.StringList) { r[d.Name] = Describe(s); continue; }
            r[d.Name] = d.Kind switch
            {
                ParameterKind.Float => Float(d.Name),
                ParameterKind.Int => Int(d.Name),
                ParameterKind.Bool => Bool(d.Name),
                ParameterKind.StringList => List(d.Name),
                _ => s is not null || d.Default is not null ? String(d.Name) : null,
            };
        }
        return r;
    }

    /// <summary>A setting as a short human-readable string (scalars as written; gradients and conditionals spelled out).</summary>
    public static string Describe(ParameterSetting s) => s switch
    {
        GradientSetting g => "gradient [" + string.Join(", ", g.Values.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "]",
        ConditionalSetting c => "conditional [" + string.Join(", ", c.Conditions.Select(x => $"{x.Filter ?? "*"} → {Describe(x.Value)}")) + "]",
        ScalarSetting sc => sc.Text,
        StringListSetting l => "[" + string.Join(", ", l.Values) + "]",
        _ => s.ToString(),
    };

    private ParameterSetting? Global(string name) =>
        _globals.Select(g => g.TryGetValue(name, out var s) ? s : null).FirstOrDefault(s => s is not null);

    private ParameterDef Def(string name) =>
        _defs.TryGetValue(name, out var d) ? d : throw new InvalidOperationException($"method did not declare parameter '{name}'");

    private object Raw(string name, string tensor, double t, int model)
    {
        var def = Def(name);
        if (model >= 0 && def.PerModel && model < _perModel.Count && _perModel[model].TryGetValue(name, out var ms) && ms.Evaluate(tensor, t) is { } mv)
            return mv;
        foreach (var scope in _globals)
            if (scope.TryGetValue(name, out var gs) && gs.Evaluate(tensor, t) is { } gv)
                return gv;
        return def.Default ?? throw new BadInputException($"missing required parameter '{name}'" + (tensor.Length > 0 ? $" for tensor {tensor}" : ""));
    }

    private static double ParseFloat(object v, string name) => v switch
    {
        double d => d,
        int i => i,
        bool b => b ? 1 : 0,
        string s when ParameterParsing.TryParseDouble(s, out double d) => d,
        string s when ParameterParsing.TryParseBool(s, out bool b) => b ? 1 : 0,
        _ => throw new BadInputException($"parameter '{name}': '{v}' is not a number"),
    };

    private void Check(string name, ParameterSetting setting, bool perModelScope, ICollection<string> warnings)
    {
        if (!_defs.TryGetValue(name, out var def))
        {
            warnings.Add($"{setting.Location}: parameter '{name}' is not used by this method (known: {string.Join(", ", _defs.Keys.Order(StringComparer.Ordinal))})");
            return;
        }
        if (perModelScope && !def.PerModel)
        {
            warnings.Add($"{setting.Location}: parameter '{name}' is global for this method; the per-model value is ignored");
            return;
        }
        if (def.Kind == ParameterKind.StringList)
        {
            if (setting is not (StringListSetting or ScalarSetting))
                throw new BadInputException($"{setting.Location}: parameter '{name}' must be a list of strings");
            return;
        }
        foreach (var leaf in Leaves(setting))
        {
            if (leaf is GradientSetting && def.Kind != ParameterKind.Float)
                throw new BadInputException($"{setting.Location}: parameter '{name}' cannot be a gradient list");
            if (leaf is StringListSetting && def.Kind != ParameterKind.String)
                throw new BadInputException($"{setting.Location}: parameter '{name}' must be a single {def.Kind.ToString().ToLowerInvariant()}, not a list");
            if (leaf is GradientSetting grad)
            {
                foreach (double v in grad.Values) CheckNumber(def, setting.Location, v, v.ToString("R", CultureInfo.InvariantCulture));
                continue;
            }
            if (leaf is not ScalarSetting sc) continue;
            if (def.Kind is ParameterKind.Float or ParameterKind.Int && ParameterParsing.TryParseDouble(sc.Text, out double number))
            {
                CheckNumber(def, setting.Location, number, sc.Text);
                continue;
            }
            bool ok = def.Kind switch
            {
                ParameterKind.Float or ParameterKind.Int => ParameterParsing.TryParseDouble(sc.Text, out _),
                ParameterKind.Bool => ParameterParsing.TryParseBool(sc.Text, out _),
                ParameterKind.String => def.Choices is null || def.Choices.Contains(sc.Text),
                _ => true,
            };
            if (!ok)
                throw new BadInputException(def.Choices is null
                    ? $"{setting.Location}: parameter '{name}' must be a {def.Kind.ToString().ToLowerInvariant()}, got '{sc.Text}'"
                    : $"{setting.Location}: parameter '{name}' must be one of {string.Join("|", def.Choices)}, got '{sc.Text}'");
        }
    }

    /// <summary>A numeric value must be finite, an integer for an Int parameter, and inside the declared range.</summary>
    private static void CheckNumber(ParameterDef def, string location, double v, string text)
    {
        var range = def.ValidRange;
        bool integral = !double.IsFinite(v) || Math.Floor(v) == v;
        if (range.Contains(v) && (integral || def.Kind != ParameterKind.Int)) return;
        string what = def.Kind == ParameterKind.Int ? "an integer" : range == ParameterRange.Finite ? "a finite number" : "a number";
        throw new BadInputException($"{location}: parameter '{def.Name}' must be {what}{(range == ParameterRange.Finite ? "" : $" in {range}")}, got '{text}'");
    }

    private static IEnumerable<ParameterSetting> Leaves(ParameterSetting s) =>
        s is ConditionalSetting c ? c.Conditions.SelectMany(x => Leaves(x.Value)) : [s];
}
