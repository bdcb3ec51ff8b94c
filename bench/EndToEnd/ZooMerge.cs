using System.Diagnostics;
using System.Text.Json;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Bench.EndToEnd;

/// <summary>
/// Whole-process merges of a LLaMA-shaped bf16 zoo (base + 3 experts; per layer q/k/v/o 2048×2048, up/down
/// 5632×2048 and a norm: 80 MB per layer per model, 5 layers ≈ 1.6 GB in all) by the <c>taskmerge</c> CLI as a
/// child process, against the plain read of the same files from the page cache (the read bound: no merge can be
/// faster than reading its inputs once). Each method runs <c>--repeats</c> times; the median wall time is
/// reported with its ratio to the read bound. The parent polls <c>/proc/PID/status</c> of the child for
/// VmHWM, RssAnon and RssFile (the largest values seen) and reads the plan's <c>estimated_peak_bytes</c> from
/// <c>merge_report.json</c>. The zoo is written to <c>--dir</c> and deleted at the end unless <c>--keep</c>.
/// Usage: <c>e2e-zoo --cli PATH [--dir DIR] [--layers 5] [--methods a,b,…] [--repeats 3] [--keep]</c>.
/// </summary>
public static class ZooMerge
{
    /// <summary>Every method this bench knows, with its YAML parameters per expert and globally.</summary>
    private static readonly Dictionary<string, (string[] PerModel, string Global)> Methods = new()
    {
        ["task_arithmetic"] = (["{weight: 1.0}", "{weight: 0.7}", "{weight: 0.5}"], ""),
        ["ties"] = (["{density: 0.5, weight: 1.0}", "{density: 0.5, weight: 0.7}", "{density: 0.3, weight: 0.5}"], ""),
        ["dare_linear"] = (["{density: 0.5, weight: 1.0}", "{density: 0.5, weight: 0.7}", "{density: 0.3, weight: 0.5}"], ""),
        ["dare_ties"] = (["{density: 0.5, weight: 1.0}", "{density: 0.5, weight: 0.7}", "{density: 0.3, weight: 0.5}"], ""),
        ["breadcrumbs"] = (["{density: 0.5, weight: 1.0}", "{density: 0.5, weight: 0.7}", "{density: 0.3, weight: 0.5}"], ""),
        ["breadcrumbs_ties"] = (["{density: 0.5, weight: 1.0}", "{density: 0.5, weight: 0.7}", "{density: 0.3, weight: 0.5}"], ""),
        ["della"] = (["{density: 0.5, weight: 1.0}", "{density: 0.5, weight: 0.7}", "{density: 0.3, weight: 0.5}"], ""),
        ["della_linear"] = (["{density: 0.5, weight: 1.0}", "{density: 0.5, weight: 0.7}", "{density: 0.3, weight: 0.5}"], ""),
    };

    public static int Run(string[] args)
    {
        string? cli = Arg(args, "--cli");
        if (cli is null) throw new ArgumentException("--cli PATH (the taskmerge executable or taskmerge.dll) is required");
        string dir = Arg(args, "--dir") ?? Path.Combine(Path.GetTempPath(), "taskmerge-bench-zoo");
        int layers = int.Parse(Arg(args, "--layers") ?? "5");
        int repeats = int.Parse(Arg(args, "--repeats") ?? "3");
        var methods = (Arg(args, "--methods") ?? "task_arithmetic,ties").Split(',');
        bool keep = args.Contains("--keep");
        foreach (var m in methods)
            if (!Methods.ContainsKey(m)) throw new ArgumentException($"unknown method '{m}' (known: {string.Join(", ", Methods.Keys)})");

        var models = new[] { "base", "expert_0", "expert_1", "expert_2" };
        try
        {
            for (int i = 0; i < models.Length; i++)
                if (!File.Exists(Path.Combine(dir, models[i], "model.safetensors"))) Generate(Path.Combine(dir, models[i]), layers, i);
            long inputBytes = models.Sum(m => new FileInfo(Path.Combine(dir, m, "model.safetensors")).Length);

            string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':')[1].Trim() ?? "unknown cpu";
            Console.WriteLine($"input: {inputBytes / 1e9:F3} GB in {models.Length} files ({layers} layers, largest tensor 5632×2048 bf16), {cpu}, {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Trim()}");
            ReadAll(dir, models);
            var reads = Enumerable.Range(0, Math.Max(3, repeats)).Select(_ => Time(() => ReadAll(dir, models))).Order().ToArray();
            double read = reads[reads.Length / 2];
            Console.WriteLine($"read bound: {read:F3} s = {inputBytes / read / 1e6:F0} MB/s (median of {reads.Length}: {string.Join(" ", reads.Select(r => r.ToString("F3")))})");

            foreach (var method in methods)
            {
                string config = WriteConfig(dir, method, models);
                string outDir = Path.Combine(dir, "out-" + method);
                var runs = new List<ChildRun>();
                for (int r = 0; r < repeats; r++)
                {
                    if (Directory.Exists(outDir)) Directory.Delete(outDir, true);
                    runs.Add(RunChild(cli, ["merge", config, outDir, "--quiet", "--random-seed", "7"]));
                }
                var sorted = runs.OrderBy(r => r.Seconds).ToArray();
                var median = sorted[sorted.Length / 2];
                long estimate = EstimatedPeak(outDir);
                Console.WriteLine($"{method,-17} {median.Seconds:F3} s = {inputBytes / median.Seconds / 1e6:F0} MB/s, ratio to read {read / median.Seconds:F3}" +
                                  $" (runs {string.Join(" ", runs.Select(r => r.Seconds.ToString("F3")))}); VmHWM {median.VmHwm / 1e6:F0} MB, RssAnon {median.RssAnon / 1e6:F0} MB," +
                                  $" RssFile {median.RssFile / 1e6:F0} MB, plan estimate {estimate / 1e6:F0} MB ({(double)estimate / median.VmHwm:F2}× VmHWM); sha256 {Sha(outDir)}");
            }
        }
        finally
        {
            if (!keep && Directory.Exists(dir)) Directory.Delete(dir, true);
        }
        return 0;
    }

    private static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static double Time(Action a)
    {
        var sw = Stopwatch.StartNew();
        a();
        return sw.Elapsed.TotalSeconds;
    }

    private static string WriteConfig(string dir, string method, string[] models)
    {
        var (perModel, global) = Methods[method];
        var lines = new List<string> { $"merge_method: {method}", $"base_model: {dir}/{models[0]}", "models:" };
        for (int i = 1; i < models.Length; i++)
        {
            lines.Add($"  - model: {dir}/{models[i]}");
            lines.Add($"    parameters: {perModel[i - 1]}");
        }
        if (global.Length > 0) lines.Add($"parameters: {global}");
        string path = Path.Combine(dir, method + ".yml");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static long EstimatedPeak(string outDir)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outDir, "merge_report.json")));
        return doc.RootElement.TryGetProperty("estimated_peak_bytes", out var e) ? e.GetInt64() : 0;
    }

    private static string Sha(string outDir)
    {
        using var f = File.OpenRead(Path.Combine(outDir, "model.safetensors"));
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f))[..16];
    }

    private sealed record ChildRun(double Seconds, long VmHwm, long RssAnon, long RssFile);

    /// <summary>Runs the CLI to completion, polling its <c>/proc/PID/status</c> every millisecond.</summary>
    private static ChildRun RunChild(string cli, string[] args)
    {
        var psi = cli.EndsWith(".dll") ? new ProcessStartInfo("dotnet") : new ProcessStartInfo(cli);
        if (cli.EndsWith(".dll")) psi.ArgumentList.Add(cli);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.RedirectStandardError = true;
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        long hwm = 0, anon = 0, file = 0;
        string status = $"/proc/{p.Id}/status";
        while (!p.HasExited)
        {
            try
            {
                foreach (var line in File.ReadLines(status))
                {
                    if (line.StartsWith("VmHWM:")) hwm = Math.Max(hwm, Kb(line));
                    else if (line.StartsWith("RssAnon:")) anon = Math.Max(anon, Kb(line));
                    else if (line.StartsWith("RssFile:")) file = Math.Max(file, Kb(line));
                }
            }
            catch (IOException) { }
            Thread.Sleep(1);
        }
        p.WaitForExit();
        double seconds = sw.Elapsed.TotalSeconds;
        if (p.ExitCode != 0) throw new InvalidOperationException($"{cli} {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Result}");
        return new ChildRun(seconds, hwm, anon, file);
    }

    private static long Kb(string line) => long.Parse(line.Split(':')[1].Trim().Split(' ')[0]) * 1024;

    private static void ReadAll(string dir, string[] models)
    {
        var buffer = new byte[16 << 20];
        foreach (var m in models)
        {
            using var f = new FileStream(Path.Combine(dir, m, "model.safetensors"), FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            while (f.Read(buffer) > 0) { }
        }
    }

    /// <summary>
    /// Writes one model: the base's values are uniform in ±0.02; an expert adds its own uniform ±0.002 task
    /// vector. Values are produced as bf16 bits directly (xorshift64, one stream per model and tensor).
    /// </summary>
    private static void Generate(string dir, int layers, int model)
    {
        Directory.CreateDirectory(dir);
        const int d = 2048, ff = 5632;
        var specs = new List<TensorSpec>();
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}.";
            foreach (var n in new[] { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj" })
                specs.Add(new(p + n + ".weight", DType.BF16, [d, d]));
            specs.Add(new(p + "mlp.up_proj.weight", DType.BF16, [ff, d]));
            specs.Add(new(p + "mlp.down_proj.weight", DType.BF16, [d, ff]));
            specs.Add(new(p + "input_layernorm.weight", DType.BF16, [d]));
        }
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}""");
        using var w = new SafetensorsWriter(dir, specs, long.MaxValue);
        var bits = new ushort[ff * d];
        for (int s = 0; s < specs.Count; s++)
        {
            int n = (int)specs[s].Shape.Aggregate(1L, (a, b) => a * b);
            ulong baseState = 0x9E3779B97F4A7C15UL * (ulong)(s + 1), expertState = 0xD1B54A32D192ED03UL * (ulong)((model + 1) * 1000 + s);
            for (int i = 0; i < n; i++)
            {
                float v = Uniform(ref baseState) * 0.02f;
                if (model > 0) v += Uniform(ref expertState) * 0.002f;
                bits[i] = FloatConvert.ToBFloat16(v);
            }
            w.Write(specs[s].Name, System.Runtime.InteropServices.MemoryMarshal.AsBytes(bits.AsSpan(0, n)));
        }
        w.Commit();
    }

    private static float Uniform(ref ulong state)
    {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17;
        return ((int)(state >> 40) - (1 << 23)) * (1f / (1 << 23));
    }
}
