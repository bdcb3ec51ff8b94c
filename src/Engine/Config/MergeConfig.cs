using YamlDotNet.RepresentationModel;

namespace TaskMerge.Engine.Config;

/// <summary>One entry of <c>models:</c>.</summary>
public sealed record ModelEntry(string Model, string ResolvedPath, IReadOnlyDictionary<string, ParameterSetting> Parameters);

/// <summary>
/// A parsed mergekit-compatible merge config. Model paths are resolved against the working
/// directory first and then against the config file's directory.
/// </summary>
public sealed class MergeConfig
{
    private static readonly HashSet<string> KnownTopLevel =
    [
        "merge_method", "base_model", "models", "parameters", "dtype", "out_dtype",
        "tokenizer_source", "tokenizer", "chat_template", "name", "slices", "modules",
    ];

    /// <summary>The config file's path.</summary>
    public required string Path { get; init; }

    /// <summary>The config text as read (written back as <c>taskmerge_config.yml</c>).</summary>
    public required string Text { get; init; }

    /// <summary>The <c>merge_method</c> value.</summary>
    public required string MergeMethod { get; init; }

    /// <summary>The base model as written, or null.</summary>
    public string? BaseModel { get; init; }

    /// <summary>The base model's resolved path, or null.</summary>
    public string? BaseModelPath { get; init; }

    /// <summary>
    /// The <c>models:</c> list in order; for a <c>slices:</c>/<c>modules:</c> config every model they reference,
    /// once each in order of appearance, without parameters.
    /// </summary>
    public required IReadOnlyList<ModelEntry> Models { get; init; }

    /// <summary>The output modules of a <c>slices:</c> (one module, null name) or <c>modules:</c> config; null for <c>models:</c>.</summary>
    public IReadOnlyList<OutputModule>? Modules { get; init; }

    /// <summary>Top-level <c>parameters:</c>.</summary>
    public required IReadOnlyDictionary<string, ParameterSetting> Parameters { get; init; }

    /// <summary>The <c>dtype</c> value (compute/load dtype) or null.</summary>
    public string? DType { get; init; }

    /// <summary>The <c>out_dtype</c> value or null.</summary>
    public string? OutDType { get; init; }

    /// <summary>Top-level keys this engine does not use (reported as warnings).</summary>
    public required IReadOnlyList<string> IgnoredKeys { get; init; }

    /// <summary>Reads and parses a config file; every problem is a <see cref="BadInputException"/>.</summary>
    public static MergeConfig Load(string path)
    {
        if (Directory.Exists(path)) throw new BadInputException($"{path}: config is a directory, not a YAML file");
        if (!File.Exists(path)) throw new BadInputException($"{path}: config file not found");
        byte[] bytes = IO.RegularFile.ReadAllBytes(path, path, 4L * BoundedYaml.MaxChars);
        string text = new StreamReader(new MemoryStream(bytes), detectEncodingFromByteOrderMarks: true).ReadToEnd();
        return Parse(text, path);
    }

    /// <summary>Parses config text; <paramref name="path"/> is used for messages and relative paths.</summary>
    public static MergeConfig Parse(string text, string path)
    {
        if (BoundedYaml.Load(text, path)?.RootNode is not YamlMappingNode root)
            throw new BadInputException($"{path}: config must be a YAML mapping with merge_method, models, ...");

        var keys = new Dictionary<string, YamlNode>();
        var ignored = new List<string>();
        foreach (var (k, v) in root.Children)
        {
            string key = Scalar(k, path, "key");
            if (!keys.TryAdd(key, v)) throw new BadInputException($"{path}:{k.Start.Line}: duplicate key '{key}'");
            if (!KnownTopLevel.Contains(key)) ignored.Add(key);
        }

        if (!keys.TryGetValue("merge_method", out var methodNode))
            throw new BadInputException($"{path}: missing required key 'merge_method'");
        string method = Scalar(methodNode, path, "merge_method");

        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".";
        string? baseModel = keys.TryGetValue("base_model", out var bm) ? ModelRef(bm, path, "base_model") : null;

        var sections = new[] { "models", "slices", "modules" }.Where(keys.ContainsKey).ToArray();
        if (sections.Length != 1)
            throw new BadInputException(sections.Length == 0
                ? $"{path}: missing 'models' (a non-empty list of {{model: PATH, parameters: ...}}), or 'slices'/'modules'"
                : $"{path}:{keys[sections[1]].Start.Line}: give exactly one of 'models', 'slices', 'modules' (found {string.Join(" and ", sections)})");
        List<OutputModule>? modules = sections[0] switch
        {
            "slices" => [new OutputModule(null, SliceParsing.Slices(keys["slices"], path, dir), new Dictionary<string, ParameterSetting>(), $"{path}:{keys["slices"].Start.Line}")],
            "modules" => SliceParsing.Modules(keys["modules"], path, dir),
            _ => null,
        };
        var models = modules is null ? ParseModels(keys["models"], path, dir) : Referenced(baseModel, modules);

        return new MergeConfig
        {
            Path = path,
            Text = text,
            MergeMethod = method,
            BaseModel = baseModel,
            BaseModelPath = baseModel is null ? null : Resolve(baseModel, dir),
            Models = models,
            Modules = modules,
            Parameters = keys.TryGetValue("parameters", out var p) ? ParseParameters(p, path) : new Dictionary<string, ParameterSetting>(),
            DType = keys.TryGetValue("dtype", out var d) ? Scalar(d, path, "dtype") : null,
            OutDType = keys.TryGetValue("out_dtype", out var od) ? Scalar(od, path, "out_dtype") : null,
            IgnoredKeys = ignored,
        };
    }

    internal static List<ModelEntry> ParseModels(YamlNode modelsNode, string path, string dir)
    {
        if (modelsNode is not YamlSequenceNode modelSeq || modelSeq.Children.Count == 0)
            throw new BadInputException($"{path}:{modelsNode.Start.Line}: 'models' must be a non-empty list of {{model: PATH, parameters: ...}}");
        var models = new List<ModelEntry>();
        foreach (var item in modelSeq.Children)
        {
            string where = $"{path}:{item.Start.Line}";
            if (item is YamlScalarNode) { var m = ModelRef(item, path, "model"); models.Add(new ModelEntry(m, Resolve(m, dir), new Dictionary<string, ParameterSetting>())); continue; }
            if (item is not YamlMappingNode map) throw new BadInputException($"{where}: each models entry must be a mapping with 'model:'");
            string? model = null;
            IReadOnlyDictionary<string, ParameterSetting> ps = new Dictionary<string, ParameterSetting>();
            foreach (var (k, v) in map.Children)
            {
                switch (Scalar(k, path, "key"))
                {
                    case "model": model = ModelRef(v, path, "model"); break;
                    case "parameters": ps = ParseParameters(v, path); break;
                    default: throw new BadInputException($"{path}:{k.Start.Line}: unknown key '{Scalar(k, path, "key")}' in models entry (expected model, parameters)");
                }
            }
            if (model is null) throw new BadInputException($"{where}: models entry without 'model:'");
            models.Add(new ModelEntry(model, Resolve(model, dir), ps));
        }
        return models;
    }

    private static List<ModelEntry> Referenced(string? baseModel, IEnumerable<OutputModule> modules)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var list = new List<ModelEntry>();
        foreach (var module in modules)
            foreach (var slice in module.Slices)
                foreach (var (model, resolved) in slice.Sources.Select(s => ((string?)s.Model, (string?)s.ResolvedPath)).Append((slice.BaseModel, slice.BaseModelPath)))
                    if (model is not null && model != baseModel && seen.Add(resolved!)) list.Add(new ModelEntry(model, resolved!, new Dictionary<string, ParameterSetting>()));
        return list;
    }

    /// <summary>
    /// A path named in a config: as given when it exists from the working directory, else relative to
    /// <paramref name="configDir"/> when it exists there, else unchanged (so errors name what the user wrote).
    /// </summary>
    public static string Resolve(string model, string configDir)
    {
        if (File.Exists(model) || Directory.Exists(model)) return System.IO.Path.GetFullPath(model);
        string rel = System.IO.Path.Combine(configDir, model);
        return File.Exists(rel) || Directory.Exists(rel) ? System.IO.Path.GetFullPath(rel) : model;
    }

    internal static string ModelRef(YamlNode node, string path, string what)
    {
        if (node is YamlMappingNode m)
        {
            // mergekit also accepts {model: {path: ...}} and {path: ...} references.
            foreach (var (k, v) in m.Children)
                if (k is YamlScalarNode { Value: "path" or "model" }) return ModelRef(v, path, what);
        }
        string s = Scalar(node, path, what);
        if (s.Contains('\0')) throw new BadInputException($"{path}:{node.Start.Line}: {what} path contains a NUL character");
        if (s.Contains('+')) throw new BadInputException($"{path}:{node.Start.Line}: '{s}': LoRA references (model+lora) are not supported");
        return s;
    }

    internal static Dictionary<string, ParameterSetting> ParseParameters(YamlNode node, string path)
    {
        if (node is YamlScalarNode { Value: null or "" or "~" or "null" }) return [];
        if (node is not YamlMappingNode map)
            throw new BadInputException($"{path}:{node.Start.Line}: 'parameters' must be a mapping of name: value");
        var result = new Dictionary<string, ParameterSetting>();
        foreach (var (k, v) in map.Children)
        {
            string name = Scalar(k, path, "parameter name");
            if (!result.TryAdd(name, ParseSetting(v, path)))
                throw new BadInputException($"{path}:{k.Start.Line}: duplicate parameter '{name}'");
        }
        return result;
    }

    private static ParameterSetting ParseSetting(YamlNode node, string path)
    {
        string loc = $"{path}:{node.Start.Line}";
        switch (node)
        {
            case YamlScalarNode s:
                return new ScalarSetting(s.Value ?? "") { Location = loc };
            case YamlMappingNode m:
                return new ConditionalSetting([ParseCondition(m, path)]) { Location = loc };
            case YamlSequenceNode seq when seq.Children.Count == 0:
                return new StringListSetting([]) { Location = loc };
            case YamlSequenceNode seq when seq.Children.All(c => c is YamlMappingNode):
                return new ConditionalSetting(seq.Children.Select(c => ParseCondition((YamlMappingNode)c, path)).ToArray()) { Location = loc };
            case YamlSequenceNode seq when seq.Children.All(c => c is YamlScalarNode):
            {
                var texts = seq.Children.Select(c => ((YamlScalarNode)c).Value ?? "").ToArray();
                var nums = new double[texts.Length];
                bool numeric = true;
                for (int i = 0; i < texts.Length && numeric; i++) numeric = ParameterParsing.TryParseDouble(texts[i], out nums[i]);
                return numeric ? new GradientSetting(nums) { Location = loc } : new StringListSetting(texts) { Location = loc };
            }
            default:
                throw new BadInputException($"{loc}: a parameter value must be a scalar, a list of numbers, or a list of {{filter, value}}");
        }
    }

    private static Condition ParseCondition(YamlMappingNode m, string path)
    {
        string? filter = null;
        ParameterSetting? value = null;
        foreach (var (k, v) in m.Children)
        {
            switch (Scalar(k, path, "key"))
            {
                case "filter": filter = Scalar(v, path, "filter"); break;
                case "value": value = ParseSetting(v, path); break;
                default: throw new BadInputException($"{path}:{k.Start.Line}: unknown key '{Scalar(k, path, "key")}' in a conditional parameter (expected filter, value)");
            }
        }
        return new Condition(filter, value ?? throw new BadInputException($"{path}:{m.Start.Line}: conditional parameter without 'value'"));
    }

    internal static string Scalar(YamlNode node, string path, string what) =>
        node is YamlScalarNode { Value: { } v } ? v : throw new BadInputException($"{path}:{node.Start.Line}: '{what}' must be a plain value");
}
