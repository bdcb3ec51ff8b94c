using System.Globalization;
using System.Text.Json;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Eval;

/// <summary>One labelled text example: a sentence or a pair, and a class index or a regression score.</summary>
/// <param name="First">First (or only) text.</param>
/// <param name="Second">Second text of a pair, or null.</param>
/// <param name="Label">Class index, or the score for regression tasks (STS-B).</param>
public sealed record TextExample(string First, string? Second, double Label);

/// <summary>
/// GLUE-style text data from TSV (a header row of column names, tab-separated, no quoting — the
/// HF <c>glue</c> export and the SST-2/QNLI/RTE/MNLI TSVs) or JSONL (one object per line). Text
/// columns follow the task name (MergeLM's <c>glue_data_keys_map</c>) or, for other names, the first
/// known column set present; labels are in <c>label</c> (GLUE label names such as
/// <c>entailment</c>/<c>not_entailment</c> are mapped to their indices).
/// </summary>
public static class TextDataset
{
    private static readonly Dictionary<string, (string First, string? Second)> GlueColumns = new(StringComparer.OrdinalIgnoreCase)
    {
        ["cola"] = ("sentence", null),
        ["sst2"] = ("sentence", null),
        ["mrpc"] = ("sentence1", "sentence2"),
        ["stsb"] = ("sentence1", "sentence2"),
        ["qqp"] = ("question1", "question2"),
        ["mnli"] = ("premise", "hypothesis"),
        ["qnli"] = ("question", "sentence"),
        ["rte"] = ("sentence1", "sentence2"),
        ["wnli"] = ("sentence1", "sentence2"),
    };

    private static readonly (string First, string? Second)[] KnownColumns =
    [
        ("sentence1", "sentence2"), ("question1", "question2"), ("premise", "hypothesis"), ("question", "sentence"),
        ("text_a", "text_b"), ("sentence", null), ("text", null),
    ];

    private static readonly Dictionary<string, int> LabelNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["entailment"] = 0, ["neutral"] = 1, ["contradiction"] = 2, ["not_entailment"] = 1,
        ["not_equivalent"] = 0, ["equivalent"] = 1, ["not_duplicate"] = 0, ["duplicate"] = 1,
        ["unacceptable"] = 0, ["acceptable"] = 1, ["negative"] = 0, ["positive"] = 1,
    };

    /// <summary>The GLUE task a task name refers to (<c>glue-mnli</c>, <c>MNLI-m</c>, <c>sst-2</c> → mnli, mnli, sst2), or null.</summary>
    public static string? GlueTask(string name)
    {
        string n = name.ToLowerInvariant().Replace("glue-", "").Replace("glue_", "").Replace("-", "").Replace("_", "");
        foreach (var k in GlueColumns.Keys)
            if (n == k || (n.StartsWith(k, StringComparison.Ordinal) && k == "mnli")) return k;
        return null;
    }

    /// <summary>Loads the examples of <paramref name="path"/> (.tsv or .jsonl/.json) for task <paramref name="taskName"/>.</summary>
    public static IReadOnlyList<TextExample> Load(string path, string taskName)
    {
        if (!File.Exists(path)) throw new BadInputException($"{P(path)}: no such file");
        string ext = Path.GetExtension(path).ToLowerInvariant();
        var rows = ext switch
        {
            ".tsv" => ReadTsv(path),
            ".jsonl" or ".json" => ReadJsonl(path),
            _ => throw new BadInputException($"{P(path)}: text data must be .tsv or .jsonl"),
        };
        if (rows.Count == 0) throw new BadInputException($"{P(path)}: no examples");
        var columns = rows[0].Keys.ToHashSet(StringComparer.Ordinal);
        (string First, string? Second) cols;
        if (GlueTask(taskName) is { } glue && GlueColumns[glue] is var g && columns.Contains(g.First) && (g.Second is null || columns.Contains(g.Second)))
            cols = g;
        else
            cols = KnownColumns.FirstOrDefault(c => columns.Contains(c.First) && (c.Second is null || columns.Contains(c.Second)));
        if (cols.First is null)
            throw new BadInputException($"{P(path)}: no text columns found (have {string.Join(", ", columns)}; expected e.g. sentence, sentence1/sentence2, question1/question2, premise/hypothesis, question/sentence)");
        if (!columns.Contains("label")) throw new BadInputException($"{P(path)}: no \"label\" column");
        var examples = new List<TextExample>(rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            string? first = r.GetValueOrDefault(cols.First), second = cols.Second is null ? null : r.GetValueOrDefault(cols.Second);
            string? label = r.GetValueOrDefault("label");
            if (first is null || (cols.Second is not null && second is null) || string.IsNullOrEmpty(label))
                throw new BadInputException($"{P(path)}: example {i + 1} lacks {cols.First}{(cols.Second is null ? "" : "/" + cols.Second)} or label");
            double y;
            if (LabelNames.TryGetValue(label, out int named)) y = named;
            else if (!double.TryParse(label, NumberStyles.Float, CultureInfo.InvariantCulture, out y) || !double.IsFinite(y))
                throw new BadInputException($"{P(path)}: example {i + 1} has label {Q(label)}, not a number or a GLUE label name");
            if (y < 0) throw new BadInputException($"{P(path)}: example {i + 1} has label {label}; GLUE test splits hide their labels (-1), use the validation split");
            examples.Add(new TextExample(first, second, y));
        }
        return examples;
    }

    private static List<Dictionary<string, string>> ReadTsv(string path)
    {
        var lines = File.ReadAllLines(path);
        var rows = new List<Dictionary<string, string>>();
        if (lines.Length == 0) return rows;
        var header = lines[0].Split('\t');
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            var f = lines[i].Split('\t');
            if (f.Length != header.Length)
                throw new BadInputException($"{P(path)}: line {i + 1} has {f.Length} fields, the header {header.Length}");
            var row = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int c = 0; c < header.Length; c++) row[header[c]] = f[c];
            rows.Add(row);
        }
        return rows;
    }

    private static List<Dictionary<string, string>> ReadJsonl(string path)
    {
        var rows = new List<Dictionary<string, string>>();
        int n = 0;
        foreach (var line in File.ReadLines(path))
        {
            n++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new BadInputException($"{P(path)}: line {n} is not a JSON object");
                var row = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var p in doc.RootElement.EnumerateObject())
                    row[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
                rows.Add(row);
            }
            catch (JsonException e)
            {
                throw new BadInputException($"{P(path)}: line {n} is not valid JSON: {OneLine(e.Message)}");
            }
        }
        return rows;
    }
}

/// <summary>Which metrics a GLUE task reports (MergeLM's <c>glue_data_metrics_map</c>) and its headline score.</summary>
public static class GlueMetrics
{
    /// <summary>
    /// The metrics of one task: CoLA → Matthews; MRPC, QQP → accuracy, F1 and their mean; STS-B →
    /// Pearson, Spearman and their mean (predictions are the raw regression outputs); others → accuracy.
    /// Returns the metric values and the headline score.
    /// </summary>
    public static (Dictionary<string, double> Values, double Score) Compute(string taskName, double[] predictions, double[] labels)
    {
        string? glue = TextDataset.GlueTask(taskName);
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        if (glue == "stsb")
        {
            double pearson = Metrics.Pearson(predictions, labels), spearman = Metrics.Spearman(predictions, labels);
            values["pearson"] = pearson;
            values["spearmanr"] = spearman;
            return (values, (pearson + spearman) / 2);
        }
        int[] p = predictions.Select(v => (int)v).ToArray(), y = labels.Select(v => (int)v).ToArray();
        double acc = Metrics.Accuracy(p, y);
        values["accuracy"] = acc;
        switch (glue)
        {
            case "cola":
                double mcc = Metrics.MatthewsCorrelation(p, y);
                values["matthews_corrcoef"] = mcc;
                return (values, mcc);
            case "mrpc" or "qqp":
                double f1 = Metrics.F1(p, y);
                values["f1"] = f1;
                return (values, (acc + f1) / 2);
            default:
                return (values, acc);
        }
    }
}
