using System.Text.Encodings.Web;
using System.Text.Json;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Eval;

/// <summary>One <c>--task NAME=DATA[,HEAD]</c>.</summary>
/// <param name="Name">Task name (report key; GLUE names select text columns and metrics).</param>
/// <param name="Data">Image-folder tree, tensor file, or TSV/JSONL file.</param>
/// <param name="Head">Head file; for RoBERTa optional (the model's own classifier is used when absent).</param>
public sealed record EvalTask(string Name, string Data, string? Head)
{
    /// <summary>Parses <c>NAME=DATA[,HEAD]</c> (the head after the last comma).</summary>
    public static EvalTask Parse(string spec)
    {
        int eq = spec.IndexOf('=');
        if (eq <= 0 || eq == spec.Length - 1) throw new BadInputException($"--task {Q(spec)}: expected NAME=DATA,HEAD");
        string name = spec[..eq], rest = spec[(eq + 1)..];
        int comma = rest.LastIndexOf(',');
        return comma < 0 ? new EvalTask(name, rest, null) : new EvalTask(name, rest[..comma], rest[(comma + 1)..]);
    }
}

/// <summary>Settings of an evaluation run.</summary>
public sealed record EvalOptions
{
    /// <summary>Examples per forward batch.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Crop/rescale flavour of image preprocessing.</summary>
    public CropRule Crop { get; init; } = CropRule.HuggingFace;

    /// <summary>Directory with vocab.json + merges.txt (default: the model directory).</summary>
    public string? TokenizerDirectory { get; init; }

    /// <summary>Token budget per example, specials included (GLUE merging papers: 128).</summary>
    public int MaxLength { get; init; } = 128;

    /// <summary>Threads decoding images.</summary>
    public int DecodeThreads { get; init; } = Environment.ProcessorCount;
}

/// <summary>The scores of one task.</summary>
/// <param name="Name">Task name.</param>
/// <param name="Examples">Examples scored.</param>
/// <param name="Metrics">Metric values (accuracy, f1, matthews_corrcoef, pearson, spearmanr).</param>
/// <param name="Score">The task's headline metric (accuracy for image tasks).</param>
/// <param name="IsText">True for GLUE-style text tasks.</param>
public sealed record TaskResult(string Name, int Examples, IReadOnlyDictionary<string, double> Metrics, double Score, bool IsText)
{
    /// <summary>Accuracy when the task has one.</summary>
    public double? Accuracy => Metrics.TryGetValue("accuracy", out double a) ? a : null;
}

/// <summary>
/// <c>taskmerge eval</c>: scores one model on several tasks. Every task's data and head are
/// opened and checked against the model (feature width, class count) before any forward pass.
/// CLIP tasks classify <c>image_embeds</c> (or <c>pooler_output</c> without a projection) with a
/// <see cref="LinearHead"/>; RoBERTa tasks tokenize TSV/JSONL text and use the task's classifier head.
/// </summary>
public static class EvalRunner
{
    /// <summary>Runs every task; <paramref name="progress"/> gets (task, done, total).</summary>
    public static IReadOnlyList<TaskResult> Run(string modelPath, IReadOnlyList<EvalTask> tasks, IBackend backend, EvalOptions options,
        Action<string, int, int>? progress = null)
    {
        if (tasks.Count == 0) throw new BadInputException("no --task given (NAME=DATA,HEAD)");
        if (options.BatchSize < 1) throw new BadInputException($"--batch-size must be at least 1, got {options.BatchSize}");
        var dup = tasks.GroupBy(t => t.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new BadInputException($"task name {Q(dup.Key)} is given twice");
        using var source = ModelSource.Open(modelPath);
        return ModelKinds.Detect(source) switch
        {
            ModelKind.ClipVision => RunClip(source, tasks, backend, options, progress),
            ModelKind.ClipText => throw new BadInputException($"{P(modelPath)}: a CLIP text tower alone has no image features to evaluate; build heads from it with taskmerge heads"),
            _ => RunRoberta(source, modelPath, tasks, backend, options, progress),
        };
    }

    private static IReadOnlyList<TaskResult> RunClip(ModelSource source, IReadOnlyList<EvalTask> tasks, IBackend backend, EvalOptions options,
        Action<string, int, int>? progress)
    {
        using var model = ClipVisionModel.Load(source, backend);
        var pre = new ImagePreprocessor(model.Config.ImageSize, options.Crop);
        var opened = new List<(EvalTask Task, IImageDataset Data, LinearHead Head)>();
        try
        {
            foreach (var t in tasks)
            {
                if (t.Head is null) throw new BadInputException($"task {Q(t.Name)}: a CLIP task needs a HEAD (NAME=DATA,HEAD)");
                if (IsTextFile(t.Data)) throw new BadInputException($"task {Q(t.Name)}: {P(t.Data)} is text data but the model is a CLIP vision tower");
                var head = LinearHead.Load(t.Head);
                if (head.Dim != model.FeatureDim)
                    throw new BadInputException($"task {Q(t.Name)}: head {head.Origin} has weight [{head.Classes}, {head.Dim}] but the model's features are {model.FeatureDim} wide ({(model.HasProjection ? "image_embeds" : "pooler_output")})");
                var data = ImageDatasets.Open(t.Data, pre, options.DecodeThreads);
                opened.Add((t, data, head));
                if (data.ClassCount is int k && k != head.Classes)
                    throw new BadInputException($"task {Q(t.Name)}: class-count mismatch: {data.Origin} has {k} class folders but head {head.Origin} has {head.Classes} classes");
                if (data is TensorFileDataset tf && tf.Labels.Where(l => l < 0 || l >= head.Classes).Take(1).ToArray() is [int bad])
                    throw new BadInputException($"task {Q(t.Name)}: {data.Origin} has label {bad}, outside the head's {head.Classes} classes");
            }

            var results = new List<TaskResult>();
            int s = model.Config.ImageSize;
            foreach (var (task, data, head) in opened)
            {
                var predictions = new int[data.Count];
                var labels = new int[data.Count];
                progress?.Invoke(task.Name, 0, data.Count);
                for (int start = 0; start < data.Count; start += options.BatchSize)
                {
                    int b = Math.Min(options.BatchSize, data.Count - start);
                    var (pixels, batchLabels) = data.Batch(start, b);
                    using var x = backend.FromHost(pixels, b, 3, s, s);
                    using var o = model.Forward(x);
                    var features = (o.ImageEmbeds ?? o.PoolerOutput).ToArray();
                    var logits = head.Logits(features, b);
                    for (int i = 0; i < b; i++)
                    {
                        predictions[start + i] = ArgMax(logits.AsSpan(i * head.Classes, head.Classes));
                        labels[start + i] = batchLabels[i];
                    }
                    progress?.Invoke(task.Name, start + b, data.Count);
                }
                double acc = Metrics.Accuracy(predictions, labels);
                results.Add(new TaskResult(task.Name, data.Count, new Dictionary<string, double> { ["accuracy"] = acc }, acc, false));
            }
            return results;
        }
        finally
        {
            foreach (var o in opened) o.Data.Dispose();
        }
    }

    private static IReadOnlyList<TaskResult> RunRoberta(ModelSource source, string modelPath, IReadOnlyList<EvalTask> tasks, IBackend backend,
        EvalOptions options, Action<string, int, int>? progress)
    {
        using var model = RobertaModel.Load(source, backend);
        string tokDir = options.TokenizerDirectory ?? source.Directory
            ?? throw new BadInputException($"{P(modelPath)}: give --tokenizer DIR (vocab.json + merges.txt) for a model file outside its directory");
        var tokenizer = RobertaTokenizer.Load(tokDir);
        var opened = new List<(EvalTask Task, IReadOnlyList<TextExample> Data, RobertaClassificationHead? Head)>();
        try
        {
            foreach (var t in tasks)
            {
                if (!IsTextFile(t.Data)) throw new BadInputException($"task {Q(t.Name)}: {P(t.Data)} is not .tsv/.jsonl text data, which a RoBERTa model needs");
                RobertaClassificationHead? head = null;
                if (t.Head is not null)
                {
                    using var hs = ModelSource.Open(t.Head);
                    head = RobertaClassificationHead.Load(hs, backend, model.Config.HiddenSize);
                }
                else if (!model.HasClassifier)
                    throw new BadInputException($"task {Q(t.Name)}: the model has no classifier; give the task's head (NAME=DATA,HEAD with classifier.* tensors)");
                opened.Add((t, TextDataset.Load(t.Data, t.Name), head));
                int labels = head?.NumLabels ?? model.NumLabels;
                bool regression = labels == 1;
                var badLabel = opened[^1].Data.FirstOrDefault(e => !regression && (e.Label >= labels || e.Label != Math.Floor(e.Label)));
                if (badLabel is not null)
                    throw new BadInputException($"task {Q(t.Name)}: class-count mismatch: {P(t.Data)} has label {badLabel.Label} but the head has {labels} classes");
            }

            var results = new List<TaskResult>();
            foreach (var (task, data, head) in opened)
            {
                int labels = head?.NumLabels ?? model.NumLabels;
                var predictions = new double[data.Count];
                progress?.Invoke(task.Name, 0, data.Count);
                for (int start = 0; start < data.Count; start += options.BatchSize)
                {
                    int b = Math.Min(options.BatchSize, data.Count - start);
                    var encoded = new int[b][];
                    for (int i = 0; i < b; i++) encoded[i] = tokenizer.Encode(data[start + i].First, data[start + i].Second, options.MaxLength);
                    int seq = encoded.Max(e => e.Length);
                    var ids = new int[b * seq];
                    var mask = new int[b * seq];
                    Array.Fill(ids, tokenizer.PadId);
                    for (int i = 0; i < b; i++)
                    {
                        encoded[i].CopyTo(ids, i * seq);
                        mask.AsSpan(i * seq, encoded[i].Length).Fill(1);
                    }
                    using var o = model.Forward(ids, b, seq, mask, head);
                    var logits = o.Logits!.ToArray();
                    for (int i = 0; i < b; i++)
                        predictions[start + i] = labels == 1 ? logits[i] : ArgMax(logits.AsSpan(i * labels, labels));
                    progress?.Invoke(task.Name, start + b, data.Count);
                }
                var (values, score) = GlueMetrics.Compute(task.Name, predictions, data.Select(e => e.Label).ToArray());
                results.Add(new TaskResult(task.Name, data.Count, values, score, true));
            }
            return results;
        }
        finally
        {
            foreach (var o in opened) o.Head?.Dispose();
        }
    }

    private static bool IsTextFile(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".tsv" or ".jsonl" or ".json";

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static int ArgMax(ReadOnlySpan<double> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /// <summary>
    /// FusionBench-style report: <c>{"task": {"accuracy": a, "n": N, ...}, ..., "average": {"accuracy": mean}}</c>.
    /// Text tasks add their GLUE metrics and <c>score</c>; the average's accuracy is over tasks that
    /// have an accuracy, and it carries the mean <c>score</c> when any text task ran.
    /// </summary>
    public static void WriteJson(string path, IReadOnlyList<TaskResult> results)
    {
        string tmp = path + $".tmp-{Environment.ProcessId}";
        try
        {
            using (var fs = File.Create(tmp))
            using (var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                w.WriteStartObject();
                foreach (var r in results)
                {
                    w.WriteStartObject(r.Name);
                    foreach (var (k, v) in r.Metrics) w.WriteNumber(k, v);
                    if (r.IsText) w.WriteNumber("score", r.Score);
                    w.WriteNumber("n", r.Examples);
                    w.WriteEndObject();
                }
                w.WriteStartObject("average");
                var acc = results.Where(r => r.Accuracy is not null).Select(r => r.Accuracy!.Value).ToArray();
                if (acc.Length > 0) w.WriteNumber("accuracy", acc.Average());
                if (results.Any(r => r.IsText)) w.WriteNumber("score", results.Average(r => r.Score));
                w.WriteEndObject();
                w.WriteEndObject();
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"{P(path)}: cannot write the JSON report: {OneLine(e.Message)}", e);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
