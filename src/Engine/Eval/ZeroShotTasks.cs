using System.Text.Json;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Eval;

/// <summary>A zero-shot classification task: class names in label order and prompt templates with <c>{}</c> where the class name goes.</summary>
public sealed record ZeroShotTask(string Name, IReadOnlyList<string> Classes, IReadOnlyList<string> Templates)
{
    /// <summary>
    /// The prompt of <paramref name="template"/> for <paramref name="className"/>: <c>{}</c> replaced by
    /// the class name, <c>{{</c> / <c>}}</c> by single braces (Python's <c>str.format</c> of one argument).
    /// </summary>
    public static string Prompt(string template, string className) =>
        template.Replace("{{", "\u0001").Replace("}}", "\u0002").Replace("{}", className).Replace('\u0001', '{').Replace('\u0002', '}');

    /// <summary>
    /// A task from a class-names file (one per line, in label order) and a templates file (one per line,
    /// each with one <c>{}</c>); blank lines are skipped. Files that give no class or no template, or a
    /// template without <c>{}</c>, are bad input naming the file and line.
    /// </summary>
    public static ZeroShotTask FromFiles(string name, string classesPath, string templatesPath)
    {
        var classes = Lines(classesPath, "class names");
        var templates = Lines(templatesPath, "templates");
        for (int i = 0; i < templates.Count; i++)
            if (!templates[i].Replace("{{", "").Replace("}}", "").Contains("{}", StringComparison.Ordinal))
                throw new BadInputException($"{P(templatesPath)}: template {templates[i]} has no {{}} for the class name");
        return new ZeroShotTask(name, classes, templates);
    }

    private static List<string> Lines(string path, string what)
    {
        var lines = ReadAllText(path, P(path), what).Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0).ToList();
        if (lines.Count == 0) throw new BadInputException($"{P(path)}: no {what}");
        return lines;
    }
}

/// <summary>
/// The built-in zero-shot tasks of the CLIP 8/14/20-task benchmarks: class names and templates
/// transcribed from FusionBench's <c>fusion_bench/tasks/clip_classification/</c> (which carries
/// task-vectors' lists for the 8 tasks) by <c>Eval/Data/extract_clip_tasks.py</c> into the embedded
/// <c>clip_tasks.json</c>, whose <c>source</c> field names the commit.
/// </summary>
public static class ZeroShotTasks
{
    private static readonly Lazy<(string Source, Dictionary<string, ZeroShotTask> Tasks)> Catalog = new(LoadCatalog);

    private static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["cars"] = "stanford_cars", ["stanford-cars"] = "stanford_cars", ["flowers102"] = "oxford_flowers102", ["flowers"] = "oxford_flowers102",
        ["oxford-iiit-pet"] = "oxford_iiit_pet", ["pets"] = "oxford_iiit_pet", ["rendered-sst2"] = "rendered_sst2", ["sst2"] = "rendered_sst2",
        ["fashion-mnist"] = "fashion_mnist", ["emnist"] = "emnist_letters", ["food-101"] = "food101", ["cifar-10"] = "cifar10", ["cifar-100"] = "cifar100",
    };

    /// <summary>Where the lists come from (a FusionBench URL at a fixed commit).</summary>
    public static string Source => Catalog.Value.Source;

    /// <summary>The built-in task names, in benchmark order (the 8 tasks first, then the 14- and 20-task additions).</summary>
    public static IReadOnlyList<string> Names => [.. Catalog.Value.Tasks.Keys];

    /// <summary>The task called <paramref name="name"/> (case-insensitive; also <c>cars</c>, <c>flowers102</c>, <c>pets</c>, …); bad input when unknown.</summary>
    public static ZeroShotTask Get(string name)
    {
        string key = name.StartsWith("tanganke/", StringComparison.OrdinalIgnoreCase) ? name["tanganke/".Length..] : name;
        key = Aliases.GetValueOrDefault(key, key).ToLowerInvariant();
        return Catalog.Value.Tasks.TryGetValue(key, out var t)
            ? t
            : throw new BadInputException($"unknown task {Q(name)} (built-in: {string.Join(", ", Names)}; or give --classes and --templates)");
    }

    private static (string, Dictionary<string, ZeroShotTask>) LoadCatalog()
    {
        using var stream = typeof(ZeroShotTasks).Assembly.GetManifestResourceStream("TaskMerge.Engine.clip_tasks.json")
            ?? throw new InvalidOperationException("embedded clip_tasks.json is missing");
        using var doc = JsonDocument.Parse(stream);
        var tasks = new Dictionary<string, ZeroShotTask>(StringComparer.Ordinal);
        foreach (var t in doc.RootElement.GetProperty("tasks").EnumerateObject())
            tasks[t.Name] = new ZeroShotTask(t.Name,
                [.. t.Value.GetProperty("classes").EnumerateArray().Select(c => c.GetString()!)],
                [.. t.Value.GetProperty("templates").EnumerateArray().Select(c => c.GetString()!)]);
        return (doc.RootElement.GetProperty("source").GetString()!, tasks);
    }
}
