using System.CommandLine;
using TaskMerge.Engine;
using TaskMerge.Engine.Eval;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Cli;

/// <summary>
/// <c>taskmerge heads MODEL --task NAME OUT.safetensors [--classes FILE --templates FILE] [--tokenizer DIR]
/// [--cache-dir DIR | --no-cache] [--device ...] [--batch-size N]</c>: a zero-shot head from the model's CLIP text tower.
/// </summary>
internal static class HeadsCommand
{
    /// <summary>The head cache used when no <c>--cache-dir</c> is given: <c>$TASKMERGE_CACHE/heads</c>, else <c>~/.cache/taskmerge/heads</c>.</summary>
    public static string DefaultCacheDirectory =>
        Path.Combine(Environment.GetEnvironmentVariable("TASKMERGE_CACHE") is { Length: > 0 } c ? c
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "taskmerge"), "heads");

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = new Argument<string>("MODEL") { Description = "CLIP model with a text tower (HF CLIPModel / CLIPTextModelWithProjection directory, or open_clip weights)" };
        var output = new Argument<string>("OUT") { Description = "head file to write (.safetensors: weight [C, E], logit_scale)" };
        var task = new Option<string>("--task") { Description = $"task name (built-in: {string.Join(", ", ZeroShotTasks.Names)}); with --classes/--templates, the name of the custom task", Required = true };
        var classes = new Option<string?>("--classes") { Description = "class names, one per line in label order (needs --templates)" };
        var templates = new Option<string?>("--templates") { Description = "prompt templates, one per line, {} for the class name (needs --classes)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "directory with vocab.json + merges.txt or tokenizer.json (default: the model directory)" };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "head cache directory (default: $TASKMERGE_CACHE/heads or ~/.cache/taskmerge/heads)" };
        var noCache = new Option<bool>("--no-cache") { Description = "neither read nor write the head cache" };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda", DefaultValueFactory = _ => "auto" };
        var batch = new Option<int>("--batch-size") { Description = "prompts per text-tower forward", DefaultValueFactory = _ => 256 };
        var threads = new Option<int>("--num-threads", "-j") { Description = "CPU threads (default: all cores)" };
        var quiet = new Option<bool>("--quiet") { Description = "no summary output" };
        var cmd = new Command("heads", "Build a zero-shot classification head from a CLIP text tower (FusionBench / task-vectors recipe)")
        {
            model, output, task, classes, templates, tokenizer, cacheDir, noCache, device, batch, threads, quiet,
        };
        cmd.SetAction(parse =>
        {
            string name = parse.GetValue(task)!;
            string? cls = parse.GetValue(classes), tpl = parse.GetValue(templates);
            if ((cls is null) != (tpl is null)) throw new BadInputException("--classes and --templates go together: give both or neither");
            if (parse.GetValue(batch) < 1) throw new BadInputException($"--batch-size must be at least 1, got {parse.GetValue(batch)}");
            var t = cls is not null ? ZeroShotTask.FromFiles(name, cls, tpl!) : ZeroShotTasks.Get(name);
            SafetensorsSingleFile.CheckTarget(parse.GetValue(output)!, [new(parse.GetValue(model)!, "MODEL")], "OUT");
            string? cache = parse.GetValue(noCache) ? null : parse.GetValue(cacheDir) ?? DefaultCacheDirectory;
            using var backend = BackendFactory.Create(parse.GetValue(device)!, parse.GetValue(threads), out _);
            var (head, fromCache) = ZeroShotHeads.GetOrBuild(parse.GetValue(model)!, backend, t, cache, parse.GetValue(tokenizer), parse.GetValue(batch));
            head.Write(parse.GetValue(output)!);
            if (!parse.GetValue(quiet))
                stdout.WriteLine($"{t.Name}: {head.Classes} classes × {t.Templates.Count} templates → [{head.Classes}, {head.Dim}], logit_scale {head.LogitScale:G6}" +
                    $"{(fromCache ? " (from cache)" : "")} → {parse.GetValue(output)}");
            return 0;
        });
        return cmd;
    }
}
