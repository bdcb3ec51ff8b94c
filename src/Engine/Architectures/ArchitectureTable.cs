using System.Text.Json.Nodes;

namespace TaskMerge.Engine.Architectures;

/// <summary>One tensor of an architecture table: its spellings (the first present in a model is used) and whether it may be absent.</summary>
/// <param name="Spellings">Alternative names (e.g. GPT-2's with and without <c>transformer.</c>), each possibly holding <c>{layer}</c>.</param>
/// <param name="Optional">True when a model may lack the tensor (tied heads, biases some checkpoints have).</param>
public sealed record WeightTemplate(IReadOnlyList<string> Spellings, bool Optional)
{
    /// <summary>The spellings with <c>{layer}</c> replaced by <paramref name="layer"/>.</summary>
    public IEnumerable<string> For(int layer) => Spellings.Select(s => s.Replace("{layer}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));

    /// <summary>The first spelling that <paramref name="has"/> accepts for <paramref name="layer"/>, or null.</summary>
    public string? Find(Func<string, bool> has, int layer = 0) => For(layer).FirstOrDefault(has);
}

/// <summary>
/// One module of an architecture (a decoder, or one tower of a two-tower model) in mergekit's sense: the weights
/// before its layer stack, one layer's weights as templates, the weights after it, and where its config keeps
/// the layer count.
/// </summary>
public sealed class ModuleTable
{
    /// <summary>Module name (<c>default</c> for single-module architectures, as mergekit names it).</summary>
    public required string Name { get; init; }

    /// <summary>The config key of the layer count, dotted for nested configs (<c>text_config.num_hidden_layers</c>).</summary>
    public required string NumLayersKey { get; init; }

    /// <summary>Config lists with one entry per layer (e.g. <c>layer_types</c>), rebuilt for a frankenmerge's layers.</summary>
    public required IReadOnlyList<string> PerLayerConfig { get; init; }

    /// <summary>Weights before the layer stack.</summary>
    public required IReadOnlyList<WeightTemplate> Pre { get; init; }

    /// <summary>The weights of one layer.</summary>
    public required IReadOnlyList<WeightTemplate> Layer { get; init; }

    /// <summary>Weights after the layer stack.</summary>
    public required IReadOnlyList<WeightTemplate> Post { get; init; }

    /// <summary>The layer count a model's config gives for this module, or null when the key is absent.</summary>
    public int? LayerCount(JsonObject? config) =>
        ConfigPath.Get(config, NumLayersKey) is JsonValue v && v.TryGetValue(out int n) ? n : null;
}

/// <summary>
/// The architectures taskmerge knows the tensor layout of (needed to renumber layers for <c>slices:</c> and
/// <c>modules:</c>): one JSON data file per architecture in <c>src/Engine/Architectures/</c>, embedded in the engine.
/// </summary>
public sealed class ArchitectureTable
{
    private static readonly Lazy<IReadOnlyList<ArchitectureTable>> All = new(LoadAll);

    /// <summary>The <c>model_type</c> of the architecture.</summary>
    public required string ModelType { get; init; }

    /// <summary>The <c>architectures[]</c> class names it covers.</summary>
    public required IReadOnlyList<string> Architectures { get; init; }

    /// <summary>Its modules in table order.</summary>
    public required IReadOnlyList<ModuleTable> Modules { get; init; }

    /// <summary>Every known architecture.</summary>
    public static IReadOnlyList<ArchitectureTable> Known => All.Value;

    /// <summary>
    /// The table for a model's <c>config.json</c> (<c>architectures[0]</c>, else <c>model_type</c>);
    /// <see cref="BadInputException"/> naming the architecture when taskmerge has no table for it.
    /// </summary>
    public static ArchitectureTable For(JsonObject config, string configPath)
    {
        string? arch = config["architectures"] is JsonArray { Count: > 0 } a && a[0] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        string? type = config["model_type"] is JsonValue t && t.TryGetValue(out string? mt) ? mt : null;
        var found = arch is not null ? Known.FirstOrDefault(k => k.Architectures.Contains(arch)) : null;
        found ??= arch is null && type is not null ? Known.FirstOrDefault(k => k.ModelType == type) : null;
        if (found is not null) return found;
        string named = arch ?? type ?? "(none named)";
        throw new BadInputException($"{configPath}: architecture {named} has no layer table in taskmerge, so slices:/modules: cannot renumber its layers " +
            $"(known: {string.Join(", ", Known.SelectMany(k => k.Architectures).Order(StringComparer.Ordinal))})");
    }

    private static IReadOnlyList<ArchitectureTable> LoadAll()
    {
        var asm = typeof(ArchitectureTable).Assembly;
        var list = new List<ArchitectureTable>();
        foreach (var res in asm.GetManifestResourceNames().Where(n => n.StartsWith("TaskMerge.Engine.Architectures.", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var s = asm.GetManifestResourceStream(res)!;
            list.Add(Parse(JsonNode.Parse(s)!.AsObject()));
        }
        return list;
    }

    private static ArchitectureTable Parse(JsonObject o)
    {
        static IReadOnlyList<string> Strings(JsonNode? n) => n is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToArray() : [];
        static IReadOnlyList<WeightTemplate> Templates(JsonNode? n) => Strings(n).Select(s =>
        {
            bool optional = s.EndsWith('?');
            return new WeightTemplate((optional ? s[..^1] : s).Split('|'), optional);
        }).ToArray();
        return new ArchitectureTable
        {
            ModelType = o["model_type"]!.GetValue<string>(),
            Architectures = Strings(o["architectures"]),
            Modules = o["modules"]!.AsArray().Select(m => new ModuleTable
            {
                Name = m!["name"]!.GetValue<string>(),
                NumLayersKey = m["num_layers"]!.GetValue<string>(),
                PerLayerConfig = Strings(m["per_layer_config"]),
                Pre = Templates(m["pre"]),
                Layer = Templates(m["layer"]),
                Post = Templates(m["post"]),
            }).ToArray(),
        };
    }
}

/// <summary>Dotted-path access into a <c>config.json</c> object (<c>text_config.num_hidden_layers</c>).</summary>
internal static class ConfigPath
{
    public static JsonNode? Get(JsonObject? config, string dotted)
    {
        JsonNode? n = config;
        foreach (var part in dotted.Split('.')) n = n is JsonObject o && o.TryGetPropertyValue(part, out var c) ? c : null;
        return n;
    }

    public static void Set(JsonObject config, string dotted, JsonNode? value)
    {
        var parts = dotted.Split('.');
        JsonObject o = config;
        foreach (var part in parts[..^1])
        {
            if (o[part] is not JsonObject child) { child = new JsonObject(); o[part] = child; }
            o = child;
        }
        o[parts[^1]] = value;
    }
}
