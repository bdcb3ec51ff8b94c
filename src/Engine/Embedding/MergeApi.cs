using System.Diagnostics;
using System.Text.Json;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Merge;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Embedding;

/// <summary>Where and how a merge runs: the <c>taskmerge merge</c> flags that are not <see cref="MergeOptions"/>.</summary>
public sealed record MergeRunSettings
{
    /// <summary><c>--device</c>: auto, cpu or cuda.</summary>
    public string Device { get; init; } = "auto";

    /// <summary><c>-j</c>: CPU threads (0 = all cores).</summary>
    public int Threads { get; init; }
}

/// <summary>A planned merge with its backend, ready to run: the plan is made and every header checked, no tensor read yet.</summary>
public sealed class PreparedMerge : IDisposable
{
    private readonly TimeSpan _planTime;

    internal PreparedMerge(MergePlan plan, IBackend backend, string? cudaNote, TimeSpan planTime)
    {
        Plan = plan;
        Backend = backend;
        CudaNote = cudaNote;
        _planTime = planTime;
    }

    /// <summary>The plan (method, experts, tensors, bytes to read, peak memory estimate).</summary>
    public MergePlan Plan { get; }

    /// <summary>The backend the merge runs on.</summary>
    public IBackend Backend { get; }

    /// <summary>Why CUDA was not used under <c>--device auto</c>; null otherwise.</summary>
    public string? CudaNote { get; }

    /// <summary>
    /// Runs the merge into <paramref name="outDir"/> (created when missing) and returns the report. Cancelling
    /// <paramref name="ct"/> throws <see cref="OperationCanceledException"/> and leaves no <c>model.safetensors</c>.
    /// </summary>
    public MergeReport Run(string outDir, IMergeProgress progress, CancellationToken ct = default)
    {
        if (File.Exists(outDir)) throw new BadInputException($"{outDir}: OUT_DIR exists and is a file");
        ct.ThrowIfCancellationRequested();
        return MergeRunner.Run(Plan, outDir, Backend, ct.CanBeCanceled ? new CancellingProgress(progress, ct) : progress, _planTime, ct);
    }

    /// <summary>
    /// Passes progress on and throws once <c>ct</c> is cancelled, so a cancel lands at the next tensor written or
    /// training step even when the remaining tensors are already queued (the writer then deletes its temp files).
    /// </summary>
    private sealed class CancellingProgress(IMergeProgress inner, CancellationToken ct) : IMergeProgress
    {
        public void StageStarted(string stage, long total)
        {
            ct.ThrowIfCancellationRequested();
            inner.StageStarted(stage, total);
        }

        public void Advance(string item, long bytes)
        {
            inner.Advance(item, bytes);
            ct.ThrowIfCancellationRequested();
        }

        public void Warn(string message) => inner.Warn(message);

        public void TrainingStep(string stage, int step, int steps, double loss, double itemsPerSecond)
        {
            inner.TrainingStep(stage, step, steps, loss, itemsPerSecond);
            ct.ThrowIfCancellationRequested();
        }

        public void Note(string message) => inner.Note(message);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Backend.Dispose();
        Plan.Dispose();
    }
}

/// <summary>
/// The one entry point of a whole-model merge, shared by the CLI, the C ABI and .NET callers:
/// config → plan → backend → <see cref="MergeRunner"/>.
/// </summary>
public static class MergeApi
{
    /// <summary>Plans <paramref name="config"/> (headers only) and creates the backend; bad input throws <see cref="BadInputException"/>.</summary>
    public static PreparedMerge Prepare(MergeConfig config, MergeOptions options, MergeRunSettings settings)
    {
        var planTimer = Stopwatch.StartNew();
        var plan = MergePlan.Create(config, options);
        planTimer.Stop();
        try
        {
            var backend = BackendFactory.Create(settings.Device, settings.Threads, out string? note);
            return new PreparedMerge(plan, backend, note, planTimer.Elapsed);
        }
        catch
        {
            plan.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Merges as <paramref name="config"/> says into <paramref name="outDir"/> and returns the report
    /// (<see cref="Prepare"/>, then <see cref="PreparedMerge.Run"/>).
    /// </summary>
    public static MergeReport Run(MergeConfig config, string outDir, MergeOptions options, MergeRunSettings settings, IMergeProgress progress, CancellationToken ct = default)
    {
        if (File.Exists(outDir)) throw new BadInputException($"{outDir}: OUT_DIR exists and is a file");
        using var merge = Prepare(config, options, settings);
        return merge.Run(outDir, progress, ct);
    }

    /// <summary>
    /// A config from YAML text when <paramref name="pathOrYaml"/> has a line break (model paths then resolve
    /// against the working directory), else from the file it names.
    /// </summary>
    public static MergeConfig LoadConfig(string pathOrYaml) =>
        pathOrYaml.Contains('\n')
            ? MergeConfig.Parse(pathOrYaml, Path.Combine(Environment.CurrentDirectory, "<config>"))
            : MergeConfig.Load(pathOrYaml);

    /// <summary>
    /// Reads <see cref="MergeOptions"/> and <see cref="MergeRunSettings"/> from a JSON object whose keys are
    /// the CLI's long flags without dashes (<c>device</c>, <c>out_shard_size</c>, <c>random_seed</c>,
    /// <c>allow_crimes</c>, <c>allow_nonfinite</c>, <c>tensor_intersection</c>, <c>num_threads</c>, <c>copy_tokenizer</c>,
    /// <c>write_model_card</c>, <c>overwrite</c>); null or empty means the CLI's defaults. Unknown keys are bad input.
    /// </summary>
    public static (MergeOptions Options, MergeRunSettings Settings) ParseOptions(string? json)
    {
        var options = new MergeOptions();
        var settings = new MergeRunSettings();
        if (string.IsNullOrWhiteSpace(json)) return (options, settings);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new BadInputException($"options: invalid JSON: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new BadInputException("options: must be a JSON object");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                var v = p.Value;
                switch (p.Name.Replace('-', '_'))
                {
                    case "device": settings = settings with { Device = Text(p) }; break;
                    case "cuda": if (Bool(p)) settings = settings with { Device = "cuda" }; break;
                    case "num_threads" or "threads": settings = settings with { Threads = Int(p) }; break;
                    case "out_shard_size": options = options with { OutShardBytes = v.ValueKind == JsonValueKind.Number ? v.GetInt64() : SizeParser.ParseBytes(Text(p)) }; break;
                    case "random_seed": options = options with { RandomSeed = v.ValueKind == JsonValueKind.Null ? null : v.TryGetUInt64(out ulong s) ? s : throw Bad(p, "a non-negative integer") }; break;
                    case "allow_crimes": options = options with { AllowCrimes = Bool(p) }; break;
                    case "allow_nonfinite": options = options with { AllowNonFinite = Bool(p) }; break;
                    case "tensor_intersection": options = options with { TensorIntersection = Bool(p) }; break;
                    case "copy_tokenizer": options = options with { CopyTokenizer = Bool(p) }; break;
                    case "no_copy_tokenizer": options = options with { CopyTokenizer = !Bool(p) }; break;
                    case "write_model_card": options = options with { WriteModelCard = Bool(p) }; break;
                    case "no_model_card": options = options with { WriteModelCard = !Bool(p) }; break;
                    case "overwrite": options = options with { Overwrite = Bool(p) }; break;
                    default: throw new BadInputException($"options: unknown key '{p.Name}' (known: device, num_threads, out_shard_size, random_seed, allow_crimes, allow_nonfinite, tensor_intersection, copy_tokenizer, write_model_card, overwrite)");
                }
            }
        }
        return (options, settings);
    }

    private static BadInputException Bad(JsonProperty p, string what) => new($"options: '{p.Name}' must be {what}, not {p.Value.GetRawText()}");

    private static string Text(JsonProperty p) => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw Bad(p, "a string");

    private static bool Bool(JsonProperty p) => p.Value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Bad(p, "true or false"),
    };

    private static int Int(JsonProperty p) => p.Value.TryGetInt32(out int i) && i >= 0 ? i : throw Bad(p, "a non-negative integer");
}
