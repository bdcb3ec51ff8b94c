using System.CommandLine;
using System.Diagnostics;
using TaskMerge.Engine;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.Embedding;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Merge;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Cli;

/// <summary><c>taskmerge merge CONFIG.yml OUT_DIR [options]</c>.</summary>
internal static class MergeCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var config = new Argument<string>("CONFIG") { Description = "mergekit-style YAML config" };
        var outDir = new Argument<string>("OUT_DIR") { Description = "output directory" };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda", DefaultValueFactory = _ => "auto" };
        var cuda = new Option<bool>("--cuda") { Description = "alias of --device cuda" };
        var shard = new Option<string>("--out-shard-size") { Description = "largest output shard: bytes with K/M/G suffixes (decimal, 5G = 5·10⁹); B = billion bytes as mergekit writes it, so the default 5B = 5G", DefaultValueFactory = _ => "5B" };
        var seed = new Option<ulong?>("--random-seed") { Description = "seed of the counter RNG behind DARE/DELLA's random drops (default: 0)" };
        var crimes = new Option<bool>("--allow-crimes") { Description = "merge models of different architectures, skipping tensors whose shape differs from the base, instead of failing" };
        var nonFinite = new Option<bool>("--allow-nonfinite") { Description = "merge tensors holding NaN/Inf (they propagate) instead of failing" };
        var intersect = new Option<bool>("--tensor-intersection", "-i") { Description = "only merge tensors every model has" };
        var threads = new Option<int>("--num-threads", "-j") { Description = "CPU threads (default: all cores)" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress output" };
        var noTokenizer = new Option<bool>("--no-copy-tokenizer") { Description = "do not copy tokenizer/preprocessor files from the base" };
        var noCard = new Option<bool>("--no-model-card", "--no-write-model-card") { Description = "do not write the model card README.md" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace a non-empty OUT_DIR that does not hold a previous TaskMerge output" };
        var offline = new Option<bool>("--offline") { Description = "resolve hub ids (org/name[@revision]) from the Hugging Face cache only, never download (also HF_HUB_OFFLINE=1)" };
        var cmd = new Command("merge", "Merge models as a mergekit-style YAML config says")
        {
            config, outDir, device, cuda, shard, seed, crimes, nonFinite, intersect, threads, quiet, noTokenizer, noCard, overwrite, offline,
        };
        foreach (var name in new[] { "--copy-tokenizer", "--lazy-unpickle", "--low-cpu-memory", "--read-to-gpu", "--clone-tensors", "--safe-serialization", "--async-write", "--write-model-card", "--multi-gpu", "--trust-remote-code" })
            cmd.Options.Add(new Option<bool>(name) { Description = "accepted for mergekit compatibility (no effect)" });

        cmd.SetAction(parse =>
        {
            var total = Stopwatch.StartNew();
            bool verbose = parse.GetValue<bool>("--verbose");
            string dev = parse.GetValue(cuda) ? "cuda" : parse.GetValue(device)!;
            var options = new MergeOptions
            {
                OutShardBytes = SizeParser.ParseBytes(parse.GetValue(shard)!),
                RandomSeed = parse.GetValue(seed),
                AllowCrimes = parse.GetValue(crimes),
                AllowNonFinite = parse.GetValue(nonFinite),
                TensorIntersection = parse.GetValue(intersect),
                CopyTokenizer = !parse.GetValue(noTokenizer),
                WriteModelCard = !parse.GetValue(noCard),
                Overwrite = parse.GetValue(overwrite),
                Hub = HubSettings.FromEnvironment(parse.GetValue(offline)),
            };
            string outPath = parse.GetValue(outDir)!;
            if (File.Exists(outPath)) throw new BadInputException($"{outPath}: OUT_DIR exists and is a file");

            var cfg = MergeConfig.Load(parse.GetValue(config)!);
            using var merge = MergeApi.Prepare(cfg, options, new MergeRunSettings { Device = dev, Threads = parse.GetValue(threads) });
            var plan = merge.Plan;

            bool q = parse.GetValue(quiet);
            if (!q)
            {
                stdout.WriteLine($"taskmerge: {plan.Method.Name}, {plan.Experts.Count} expert(s), {plan.Tensors.Count} tensors, {Units.Bytes(plan.BytesToRead)} to read, ~{Units.Bytes(plan.EstimatedPeakBytes)} peak memory, device {merge.Backend.Name}");
                if (merge.CudaNote is not null && verbose) stdout.WriteLine($"  (cuda not used: {merge.CudaNote})");
            }
            if (merge.CudaNote is not null && !verbose && BackendFactory.IsDeviceFailure(merge.CudaNote))
                stderr.WriteLine($"taskmerge: CUDA device present but not used, running on the CPU: {merge.CudaNote}");
            var report = ConsoleProgress.Run(stdout, stderr, q, progress => merge.Run(outPath, progress));
            if (!q)
            {
                double wall = report.ExecuteSeconds;
                stdout.WriteLine($"done in {total.Elapsed.TotalSeconds:F2} s → {outPath} ({string.Join(", ", report.Files)})");
                stdout.WriteLine($"  plan {report.PlanSeconds:F2} s · prepare {report.PrepareSeconds:F2} s · load {report.LoadSeconds:F2} s · compute {report.ComputeSeconds:F2} s · write {report.WriteSeconds:F2} s (overlapped, wall {wall:F2} s)");
                stdout.WriteLine($"  read {Units.Bytes(report.BytesRead)} ({Units.Rate(report.BytesRead, wall)}) · wrote {Units.Bytes(report.BytesWritten)} · {report.TensorsMerged} merged, {report.TensorsCopied} copied");
            }
            return 0;
        });
        return cmd;
    }
}

/// <summary>Human-readable sizes and rates.</summary>
internal static class Units
{
    public static string Bytes(long b) => b switch
    {
        >= 1L << 30 => $"{b / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{b / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{b / 1024.0:F1} KiB",
        _ => $"{b} B",
    };

    public static string Rate(long bytes, double seconds) => seconds > 0 ? $"{bytes / seconds / (1 << 20):F0} MiB/s" : "-";
}
