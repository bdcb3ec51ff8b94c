using System.Text.Json;
using System.Text.Json.Nodes;
using TaskMerge.Engine.IO;

namespace TaskMerge.Engine.Merge;

/// <summary>
/// mergekit's architecture guard: models whose <c>config.json</c> names different architectures
/// (<c>architectures[0]</c>, else <c>model_type</c>) are not merged unless <c>--allow-crimes</c>.
/// Models without a <c>config.json</c> are not compared.
/// </summary>
internal static class ArchitectureCheck
{
    /// <summary>Throws a <see cref="BadInputException"/> naming both models, or with <paramref name="allowCrimes"/> adds a warning.</summary>
    public static void Run(ModelSource reference, IEnumerable<ModelSource> models, bool allowCrimes, ICollection<string> warnings)
    {
        string? expected = Architecture(reference);
        if (expected is null) return;
        foreach (var m in models)
        {
            if (ReferenceEquals(m, reference) || Architecture(m) is not { } actual || actual == expected) continue;
            string msg = $"{m.Path}: architecture {actual} differs from {reference.Path}'s {expected}";
            if (!allowCrimes) throw new BadInputException(msg + " (use --allow-crimes to merge different architectures)");
            warnings.Add(msg + "; merged anyway (--allow-crimes)");
        }
    }

    private static string? Architecture(ModelSource m)
    {
        if (m.ConfigJsonPath is not { } path) return null;
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(JsonSurrogates.Check(IOText.ReadAllText(path, path, "config.json"), path));
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{path}: not valid JSON ({e.Message})");
        }
        if (node is not JsonObject obj) return null;
        if (obj["architectures"] is JsonArray { Count: > 0 } a && a[0] is JsonValue v && v.TryGetValue(out string? arch)) return arch;
        return obj["model_type"] is JsonValue t && t.TryGetValue(out string? type) ? type : null;
    }
}
