using System.CommandLine;
using TaskMerge.Engine;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.Merge;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Cli;

/// <summary><c>taskmerge ri CONFIG.yml OUT_DIR</c>: RI adaptation only, adapted experts as HF directories.</summary>
internal static class RiCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var config = new Argument<string>("CONFIG") { Description = "a merge_method: ri YAML config (base_method is not run)" };
        var outDir = new Argument<string>("OUT_DIR") { Description = "output directory: OUT_DIR/<model-name>/ per expert, and ri_report.json (checkpoints in OUT_DIR/.ri-checkpoints while running)" };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda", DefaultValueFactory = _ => "auto" };
        var cuda = new Option<bool>("--cuda") { Description = "alias of --device cuda" };
        var threads = new Option<int>("--num-threads", "-j") { Description = "CPU threads (default: all cores)" };
        var quiet = new Option<bool>("--quiet") { Description = "no output but warnings (no progress)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace a non-empty OUT_DIR that does not hold a previous TaskMerge output" };
        var cmd = new Command("ri", "Adapt each expert with RI (on the CPU or the GPU) and write the adapted experts, without merging")
        {
            config, outDir, device, cuda, threads, quiet, overwrite,
        };
        cmd.SetAction(parse =>
        {
            string outPath = parse.GetValue(outDir)!;
            if (File.Exists(outPath)) throw new BadInputException($"{outPath}: OUT_DIR exists and is a file");
            var cfg = MergeConfig.Load(parse.GetValue(config)!);
            using var plan = MergePlan.Create(cfg, new MergeOptions { Overwrite = parse.GetValue(overwrite) });
            string dev = parse.GetValue(cuda) ? "cuda" : parse.GetValue(device)!;
            using var backend = BackendFactory.Create(dev, parse.GetValue(threads), out string? note);
            bool q = parse.GetValue(quiet);
            if (!q)
            {
                stdout.WriteLine($"taskmerge ri: {plan.Experts.Count} expert(s), device {backend.Name}");
                if (note is not null && parse.GetValue<bool>("--verbose")) stdout.WriteLine($"  (cuda not used: {note})");
            }
            var dirs = ConsoleProgress.Run(stdout, stderr, q, progress => RiExport.Run(plan, outPath, backend, progress), barsOnStderr: true);
            if (!q)
                foreach (var d in dirs) stdout.WriteLine($"wrote {d}");
            return 0;
        });
        return cmd;
    }
}
