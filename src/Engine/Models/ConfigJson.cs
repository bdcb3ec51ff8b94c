using System.Text.Json;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Models;

/// <summary>The MLP activations the forward pass implements (HF <c>hidden_act</c>).</summary>
public enum Activation
{
    /// <summary><c>"quick_gelu"</c>: x·σ(1.702x) (OpenAI CLIP).</summary>
    QuickGelu,

    /// <summary><c>"gelu"</c>: exact erf GELU (RoBERTa, non-OpenAI CLIP).</summary>
    Gelu,
}

/// <summary>Reads Hugging Face <c>config.json</c> objects: typed fields with class defaults for absent ones.</summary>
internal sealed class ConfigJson
{
    private readonly JsonElement _obj;

    private ConfigJson(string path, JsonElement obj)
    {
        Path = path;
        _obj = obj;
    }

    /// <summary>The file (and, for nested objects, the key path) the values come from, for messages.</summary>
    public string Path { get; }

    /// <summary>Parses a config file; <see cref="BadInputException"/> when it is unreadable or not a JSON object.</summary>
    public static ConfigJson Load(string path)
    {
        string text = IO.JsonSurrogates.Check(ReadAllText(path, P(path)), P(path));
        try
        {
            using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new BadInputException($"{P(path)}: config must be a JSON object");
            return new ConfigJson(P(path), doc.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{P(path)}: not valid JSON: {OneLine(e.Message)}");
        }
    }

    /// <summary>A config from a JSON string (tests, inline configs).</summary>
    public static ConfigJson Parse(string json, string origin = "config")
    {
        using var doc = JsonDocument.Parse(json);
        return new ConfigJson(origin, doc.RootElement.Clone());
    }

    /// <summary>The nested object <paramref name="key"/>, or null when absent or null.</summary>
    public ConfigJson? Object(string key) =>
        _obj.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Object ? new ConfigJson($"{Path}:{key}", v) : null;

    /// <summary>True when <paramref name="key"/> is present and not null.</summary>
    public bool Has(string key) => _obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>A string field, or <paramref name="fallback"/>.</summary>
    public string? String(string key, string? fallback = null)
    {
        if (!_obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad(key, "a string");
    }

    /// <summary>An integer field, or <paramref name="fallback"/>.</summary>
    public int Int(string key, int fallback)
    {
        if (!_obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        throw Bad(key, "an integer");
    }

    /// <summary>A number field, or <paramref name="fallback"/>.</summary>
    public double Double(string key, double fallback)
    {
        if (!_obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Bad(key, "a number");
    }

    /// <summary>Number of entries of an object field (e.g. <c>id2label</c>), or null when absent.</summary>
    public int? ObjectCount(string key) =>
        _obj.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Object ? v.EnumerateObject().Count() : null;

    /// <summary>The activation named by <paramref name="key"/> (default <paramref name="fallback"/>); unknown names are bad input.</summary>
    public Activation Activation(string key, Activation fallback)
    {
        string? s = String(key);
        return s switch
        {
            null => fallback,
            "quick_gelu" => Models.Activation.QuickGelu,
            "gelu" => Models.Activation.Gelu,
            _ => throw new BadInputException($"{Path}: {key} {Q(s)} is not supported (supported: gelu, quick_gelu)"),
        };
    }

    private BadInputException Bad(string key, string what) => new($"{Path}: {key} must be {what}");
}
