using YamlDotNet.RepresentationModel;

namespace TaskMerge.Engine.Config;

/// <summary>One entry of a slice's <c>sources:</c>: layers [<paramref name="Start"/>, <paramref name="End"/>) of a model.</summary>
/// <param name="Model">The model as written.</param>
/// <param name="ResolvedPath">Its resolved path.</param>
/// <param name="Start">First layer (null with <paramref name="End"/> for every layer: a module's <c>models:</c> entry).</param>
/// <param name="End">One past the last layer.</param>
/// <param name="Parameters">The source's <c>parameters</c> (per-model).</param>
/// <param name="Location">"config.yml:12" of the entry.</param>
public sealed record SliceSource(string Model, string ResolvedPath, int? Start, int? End, IReadOnlyDictionary<string, ParameterSetting> Parameters, string Location);

/// <summary>One entry of <c>slices:</c>: a run of output layers merged from its sources' layer ranges.</summary>
/// <param name="Sources">The inputs, each a layer range of the same length.</param>
/// <param name="BaseModel">The slice's own <c>base_model</c> as written, or null for the top-level one.</param>
/// <param name="BaseModelPath">Its resolved path.</param>
/// <param name="Parameters">The slice's <c>parameters</c> (between the sources' and the module's in precedence).</param>
/// <param name="Location">"config.yml:12" of the slice.</param>
public sealed record OutputSlice(IReadOnlyList<SliceSource> Sources, string? BaseModel, string? BaseModelPath, IReadOnlyDictionary<string, ParameterSetting> Parameters, string Location);

/// <summary>One output module (<c>modules: NAME: {slices, parameters}</c>); top-level <c>slices:</c> is the one module with a null name.</summary>
/// <param name="Name">Module name as the architecture table spells it; null for the architecture's only module.</param>
/// <param name="Slices">The module's slices in output order.</param>
/// <param name="Parameters">The module's <c>parameters</c>.</param>
/// <param name="Location">"config.yml:12" of the module.</param>
public sealed record OutputModule(string? Name, IReadOnlyList<OutputSlice> Slices, IReadOnlyDictionary<string, ParameterSetting> Parameters, string Location);

/// <summary>Parses mergekit's <c>slices:</c> and <c>modules:</c> sections.</summary>
internal static class SliceParsing
{
    public static List<OutputSlice> Slices(YamlNode node, string path, string dir)
    {
        if (node is not YamlSequenceNode seq || seq.Children.Count == 0)
            throw new BadInputException($"{path}:{node.Start.Line}: 'slices' must be a non-empty list of {{sources: [...]}}");
        return seq.Children.Select(s => Slice(s, path, dir)).ToList();
    }

    public static List<OutputModule> Modules(YamlNode node, string path, string dir)
    {
        if (node is not YamlMappingNode map || map.Children.Count == 0)
            throw new BadInputException($"{path}:{node.Start.Line}: 'modules' must be a mapping of module name: {{slices: [...]}} or {{models: [...]}}");
        var result = new List<OutputModule>();
        foreach (var (k, v) in map.Children)
        {
            string name = MergeConfig.Scalar(k, path, "module name");
            if (v is not YamlMappingNode m) throw new BadInputException($"{path}:{v.Start.Line}: module '{name}' must be a mapping with slices: or models:");
            List<OutputSlice>? slices = null;
            IReadOnlyDictionary<string, ParameterSetting> ps = new Dictionary<string, ParameterSetting>();
            foreach (var (mk, mv) in m.Children)
            {
                switch (MergeConfig.Scalar(mk, path, "key"))
                {
                    case "slices": slices = Slices(mv, path, dir); break;
                    case "models": slices = [WholeModels(mv, path, dir)]; break;
                    case "parameters": ps = MergeConfig.ParseParameters(mv, path); break;
                    case "name": break;
                    default: throw new BadInputException($"{path}:{mk.Start.Line}: unknown key '{MergeConfig.Scalar(mk, path, "key")}' in module '{name}' (expected slices, models, parameters)");
                }
            }
            if (slices is null) throw new BadInputException($"{path}:{m.Start.Line}: module '{name}' needs slices: or models:");
            result.Add(new OutputModule(name, slices, ps, $"{path}:{k.Start.Line}"));
        }
        return result;
    }

    /// <summary>A module's <c>models:</c> list as one slice over every layer of each model (mergekit's normalisation).</summary>
    private static OutputSlice WholeModels(YamlNode node, string path, string dir)
    {
        var models = MergeConfig.ParseModels(node, path, dir);
        return new OutputSlice(models.Select(m => new SliceSource(m.Model, m.ResolvedPath, null, null, m.Parameters, path)).ToList(), null, null,
            new Dictionary<string, ParameterSetting>(), $"{path}:{node.Start.Line}");
    }

    private static OutputSlice Slice(YamlNode node, string path, string dir)
    {
        string where = $"{path}:{node.Start.Line}";
        if (node is not YamlMappingNode map) throw new BadInputException($"{where}: each slice must be a mapping with 'sources:'");
        List<SliceSource>? sources = null;
        string? baseModel = null;
        IReadOnlyDictionary<string, ParameterSetting> ps = new Dictionary<string, ParameterSetting>();
        foreach (var (k, v) in map.Children)
        {
            switch (MergeConfig.Scalar(k, path, "key"))
            {
                case "sources":
                    if (v is not YamlSequenceNode seq || seq.Children.Count == 0)
                        throw new BadInputException($"{path}:{v.Start.Line}: slices: 'sources' must be a non-empty list of {{model, layer_range}}");
                    sources = seq.Children.Select(s => Source(s, path, dir)).ToList();
                    break;
                case "base_model": baseModel = MergeConfig.ModelRef(v, path, "base_model"); break;
                case "parameters": ps = MergeConfig.ParseParameters(v, path); break;
                case "residual_weight": break; // mergekit parses it and never reads it
                default: throw new BadInputException($"{path}:{k.Start.Line}: unknown key '{MergeConfig.Scalar(k, path, "key")}' in a slice (expected sources, base_model, parameters)");
            }
        }
        if (sources is null) throw new BadInputException($"{where}: slice without 'sources:'");
        int len = sources[0].End!.Value - sources[0].Start!.Value;
        foreach (var s in sources)
            if (s.End - s.Start != len)
                throw new BadInputException($"{s.Location}: layer_range [{s.Start}, {s.End}) has {s.End - s.Start} layers but the slice's first source has {len}; every source of a slice must have the same number");
        return new OutputSlice(sources, baseModel, baseModel is null ? null : MergeConfig.Resolve(baseModel, dir), ps, where);
    }

    private static SliceSource Source(YamlNode node, string path, string dir)
    {
        string where = $"{path}:{node.Start.Line}";
        if (node is not YamlMappingNode map) throw new BadInputException($"{where}: each source must be a mapping with model: and layer_range:");
        string? model = null;
        int[]? range = null;
        IReadOnlyDictionary<string, ParameterSetting> ps = new Dictionary<string, ParameterSetting>();
        foreach (var (k, v) in map.Children)
        {
            switch (MergeConfig.Scalar(k, path, "key"))
            {
                case "model": model = MergeConfig.ModelRef(v, path, "model"); break;
                case "layer_range": range = Range(v, path); break;
                case "parameters": ps = MergeConfig.ParseParameters(v, path); break;
                default: throw new BadInputException($"{path}:{k.Start.Line}: unknown key '{MergeConfig.Scalar(k, path, "key")}' in a slice source (expected model, layer_range, parameters)");
            }
        }
        if (model is null) throw new BadInputException($"{where}: slice source without 'model:'");
        if (range is null) throw new BadInputException($"{where}: slice source without 'layer_range: [start, end]'");
        return new SliceSource(model, MergeConfig.Resolve(model, dir), range[0], range[1], ps, where);
    }

    private static int[] Range(YamlNode node, string path)
    {
        string where = $"{path}:{node.Start.Line}";
        if (node is not YamlSequenceNode { Children.Count: 2 } seq)
            throw new BadInputException($"{where}: layer_range must be [start, end]");
        var r = seq.Children.Select(c => c is YamlScalarNode { Value: { } s } && int.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int i) ? i : -1).ToArray();
        if (r[0] < 0 || r[1] < 0) throw new BadInputException($"{where}: layer_range must be two non-negative integers");
        if (r[1] <= r[0]) throw new BadInputException($"{where}: layer_range [{r[0]}, {r[1]}) is empty (end must be greater than start)");
        return r;
    }
}
