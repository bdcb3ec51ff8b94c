using System.Diagnostics;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Merge;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Bench.EndToEnd;

/// <summary>
/// End-to-end TIES (or task arithmetic) throughput against the plain read speed of the same input
/// files on the same machine. Writes a synthetic bf16 zoo (base + 3 experts of LLaMA-like layers,
/// 80 MB per layer per model: 20 layers ≈ 6.4 GB in total), reads every file once with large
/// sequential reads (the baseline: no merge can be faster than reading its inputs), then runs a full
/// merge (plan → execute → write) and reports both rates and their ratio. The page cache is warm for
/// both measurements. On a device backend it also reports how the uploads were staged.
/// With METHOD wudi (300 Adam steps per matrix) the merge is compute-bound and the run shows the loader
/// staging later layers while a layer's Adam loop runs (load time hidden under compute time).
/// Usage: <c>e2e-ties [DIR] [LAYERS] [DEVICE cpu|cuda] [METHOD ties|task_arithmetic|wudi]</c>.
/// </summary>
public static class TiesThroughput
{
    public static int Run(string[] args)
    {
        string dir = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "taskmerge-bench-ties");
        int layers = args.Length > 1 ? int.Parse(args[1]) : 20;
        string device = args.Length > 2 ? args[2] : "cpu";
        string method = args.Length > 3 ? args[3] : "ties";
        if (method is not ("ties" or "task_arithmetic" or "wudi")) throw new ArgumentException($"METHOD must be ties, task_arithmetic or wudi, got '{method}'");
        using var backend = Device.CudaDevice.ForEndToEnd(device, 0);
        if (backend is null) return 0;
        var models = new[] { "base", "expert_0", "expert_1", "expert_2" };
        foreach (var (m, i) in models.Select((m, i) => (m, i)))
            if (!File.Exists(Path.Combine(dir, m, "model.safetensors"))) Generate(Path.Combine(dir, m), layers, (ulong)i);

        long inputBytes = models.Sum(m => new FileInfo(Path.Combine(dir, m, "model.safetensors")).Length);
        ReadAll(dir, models);
        var read = Stopwatch.StartNew();
        ReadAll(dir, models);
        read.Stop();

        string config = Path.Combine(dir, $"{method}.yml");
        File.WriteAllText(config, method == "wudi"
            ? $"""
                merge_method: wudi
                base_model: {dir}/base
                models:
                  - model: {dir}/expert_0
                  - model: {dir}/expert_1
                  - model: {dir}/expert_2
                parameters: {"{iter_num: 300, lr: 1.0e-5}"}
                """
            : $"""
                merge_method: {method}
                base_model: {dir}/base
                models:
                  - model: {dir}/expert_0
                    parameters: {"{density: 0.5, weight: 1.0}"}
                  - model: {dir}/expert_1
                    parameters: {"{density: 0.5, weight: 0.7}"}
                  - model: {dir}/expert_2
                    parameters: {"{density: 0.3, weight: 0.5}"}
                """);
        string outDir = Path.Combine(dir, "out");
        if (Directory.Exists(outDir)) Directory.Delete(outDir, true);
        var merge = Stopwatch.StartNew();
        var cfg = MergeConfig.Load(config);
        using var plan = MergePlan.Create(cfg, new MergeOptions());
        var report = MergeRunner.Run(plan, outDir, backend, NullProgress.Instance, merge.Elapsed);
        merge.Stop();

        double readRate = inputBytes / read.Elapsed.TotalSeconds / 1e6;
        double mergeRate = inputBytes / merge.Elapsed.TotalSeconds / 1e6;
        string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':')[1].Trim() ?? "unknown cpu";
        Console.WriteLine($"input: {inputBytes / 1e9:F2} GB in {models.Length} files ({layers} layers), device {backend.Name}, {cpu}, {Environment.ProcessorCount} cores");
        Console.WriteLine($"plain read: {read.Elapsed.TotalSeconds:F2} s = {readRate:F0} MB/s");
        Console.WriteLine($"{method} merge: {merge.Elapsed.TotalSeconds:F2} s = {mergeRate:F0} MB/s of input (load {report.LoadSeconds:F2} s, compute {report.ComputeSeconds:F2} s, write {report.WriteSeconds:F2} s)");
        if (backend is TaskMerge.Engine.Tensors.Ilgpu.IlgpuBackend gpu)
            Console.WriteLine($"uploads: {gpu.Diagnostics.Staging.PinnedUploads} through pinned slots, {gpu.Diagnostics.Staging.PlainUploads} plain; {gpu.Diagnostics.Staging.PinnedBytes / 1e6:F0} MB pinned{(gpu.Diagnostics.Staging.Unavailable is { } why ? $" (pinned staging off: {why})" : "")}");
        Console.WriteLine($"ratio merge/read: {mergeRate / readRate:F3}");
        return 0;
    }

    private static void ReadAll(string dir, string[] models)
    {
        var buffer = new byte[16 << 20];
        foreach (var m in models)
        {
            using var f = new FileStream(Path.Combine(dir, m, "model.safetensors"), FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            while (f.Read(buffer) > 0) { }
        }
    }

    private static void Generate(string dir, int layers, ulong seed)
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
        using var w = new SafetensorsWriter(dir, specs, long.MaxValue);
        ulong state = 0x9E3779B97F4A7C15UL * (seed + 1);
        foreach (var (name, _, shape) in specs.Select(s => (s.Name, s.DType, s.Shape)))
        {
            var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (int i = 0; i < values.Length; i++)
            {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                values[i] = ((int)(state >> 40) - (1 << 23)) * (0.02f / (1 << 23));
            }
            w.WriteFloat32(name, values);
        }
        w.Commit();
    }
}
