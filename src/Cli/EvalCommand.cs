using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using TaskMerge.Engine;
using TaskMerge.Engine.Eval;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Cli;

/// <summary><c>taskmerge eval MODEL --task NAME=DATA,HEAD [--task ...] [--json OUT.json] [--device ...] [--batch-size N]</c>.</summary>
internal static class EvalCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = new Argument<string>("MODEL") { Description = "HF model directory (CLIP vision tower or RoBERTa) or a .safetensors file" };
        var task = new Option<string[]>("--task", "-t")
        {
            Description = "NAME=DATA,HEAD: DATA an image-folder tree, a .safetensors (pixel_values, labels) or a .tsv/.jsonl text file; HEAD a safetensors head (weight [C,E] for CLIP, classifier.* for RoBERTa)",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var json = new Option<string?>("--json") { Description = "write {task: {accuracy, n}, average: {accuracy}} here" };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda", DefaultValueFactory = _ => "auto" };
        var batch = new Option<int>("--batch-size") { Description = "examples per forward batch", DefaultValueFactory = _ => 32 };
        var crop = new Option<string>("--crop") { Description = "image preprocessing flavour: hf (floor crop, HF CLIPImageProcessor) | openclip (rounded crop, torchvision)", DefaultValueFactory = _ => "hf" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "directory with vocab.json and merges.txt (default: the model directory)" };
        var maxLength = new Option<int>("--max-length") { Description = "tokens per text example, specials included", DefaultValueFactory = _ => 128 };
        var threads = new Option<int>("--num-threads", "-j") { Description = "CPU threads (default: all cores)" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress output" };
        var cmd = new Command("eval", "Score a model on labelled image or GLUE-style text tasks")
        {
            model, task, json, device, batch, crop, tokenizer, maxLength, threads, quiet,
        };
        cmd.SetAction(parse =>
        {
            var clock = Stopwatch.StartNew();
            bool q = parse.GetValue(quiet);
            var tasks = (parse.GetValue(task) ?? []).Select(EvalTask.Parse).ToList();
            var options = new EvalOptions
            {
                BatchSize = parse.GetValue(batch),
                Crop = parse.GetValue(crop)!.ToLowerInvariant() switch
                {
                    "hf" or "huggingface" => CropRule.HuggingFace,
                    "openclip" or "open_clip" or "torchvision" => CropRule.OpenClip,
                    var c => throw new BadInputException($"--crop '{c}' is not one of hf, openclip"),
                },
                TokenizerDirectory = parse.GetValue(tokenizer),
                MaxLength = parse.GetValue(maxLength) is var m and >= 4 ? m : throw new BadInputException("--max-length must be at least 4"),
                DecodeThreads = parse.GetValue(threads) > 0 ? parse.GetValue(threads) : Environment.ProcessorCount,
            };
            using var backend = BackendFactory.Create(parse.GetValue(device)!, parse.GetValue(threads), out _);
            var results = ItemProgress.Run(stdout, q, "examples", report => EvalRunner.Run(parse.GetValue(model)!, tasks, backend, options, report));
            PrintTable(stdout, results);
            if (parse.GetValue(json) is { } path)
            {
                EvalRunner.WriteJson(path, results);
                if (!q) stdout.WriteLine($"results written to {path}");
            }
            if (!q) stdout.WriteLine($"evaluated {results.Sum(r => r.Examples)} examples in {clock.Elapsed.TotalSeconds:F2} s on {backend.Name}");
            return 0;
        });
        return cmd;
    }

    private static void PrintTable(TextWriter o, IReadOnlyList<TaskResult> results)
    {
        bool text = results.Any(r => r.IsText);
        int w = Math.Max(8, results.Max(r => r.Name.Length));
        static string F(double? v) => v is null ? "-" : v.Value.ToString("F4", CultureInfo.InvariantCulture);
        o.WriteLine(text ? $"{"task".PadRight(w)}  {"n",7}  {"accuracy",8}  {"score",8}  metrics" : $"{"task".PadRight(w)}  {"n",7}  {"accuracy",8}");
        foreach (var r in results)
        {
            string line = $"{r.Name.PadRight(w)}  {r.Examples,7}  {F(r.Accuracy),8}";
            if (text)
                line += $"  {F(r.Score),8}  " + string.Join(", ", r.Metrics.Where(kv => kv.Key != "accuracy").Select(kv => $"{kv.Key} {F(kv.Value)}"));
            o.WriteLine(line.TrimEnd());
        }
        var acc = results.Where(r => r.Accuracy is not null).Select(r => r.Accuracy!.Value).ToArray();
        string avg = $"{"average".PadRight(w)}  {results.Sum(r => r.Examples),7}  {(acc.Length > 0 ? F(acc.Average()) : "-"),8}";
        if (text) avg += $"  {F(results.Average(r => r.Score)),8}";
        o.WriteLine(avg);
    }
}
