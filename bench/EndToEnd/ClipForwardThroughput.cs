using System.Diagnostics;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Bench.EndToEnd;

/// <summary>
/// ViT-B/32 image-encoder throughput: random weights built in memory on the backend (HF
/// CLIPVisionModelWithProjection shapes, quick_gelu), random normalised pixels, one warm-up forward
/// of 2 images, then timed forwards of BATCH images. Reports images/s (wall clock) and images per CPU-second of the
/// process, which stays meaningful on a shared, loaded machine. Arguments: <c>e2e-clip-forward [BATCH=128] [REPEATS=1] [DEVICE=cpu] [THREADS=0]</c>.
/// </summary>
public static class ClipForwardThroughput
{
    public static int Run(string[] args)
    {
        int batch = args.Length > 0 ? int.Parse(args[0]) : 128;
        int repeats = args.Length > 1 ? int.Parse(args[1]) : 1;
        string device = args.Length > 2 ? args[2] : "cpu";
        int threads = args.Length > 3 ? int.Parse(args[3]) : 0;
        var config = new ClipVisionConfig();   // ViT-B/32 = the HF class defaults
        using var backend = Device.CudaDevice.ForEndToEnd(device, threads);
        if (backend is null) return 0;
        var build = Stopwatch.StartNew();
        using var model = ClipVisionModel.Random(config, backend, seed: 1);
        build.Stop();

        using (var warm = Pixels(backend, config, 2)) using (model.Forward(warm)) { }

        using var x = Pixels(backend, config, batch);
        var times = new List<double>();
        var cpuTimes = new List<double>();
        var process = Process.GetCurrentProcess();
        for (int r = 0; r < repeats; r++)
        {
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            using var o = model.Forward(x);
            _ = o.ImageEmbeds!.ToArray();
            times.Add(sw.Elapsed.TotalSeconds);
            process.Refresh();
            cpuTimes.Add((process.TotalProcessorTime - cpu0).TotalSeconds);
        }
        double best = times.Min();
        double gflop = Gflop(config) * batch;
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':')[1].Trim() ?? "unknown cpu"
            : "unknown cpu";
        Console.WriteLine($"ViT-B/32 forward (random weights, built in {build.Elapsed.TotalSeconds:F1} s), device {backend.Name}, {cpu}, {Environment.ProcessorCount} cores");
        Console.WriteLine($"batch {batch}: best of {repeats} = {best:F2} s wall → {batch / best:F2} images/s ({gflop / best:F1} GFLOP/s over {gflop:F0} GFLOP); all runs: {string.Join(", ", times.Select(t => t.ToString("F2")))} s");
        double cpuBest = cpuTimes.Min();
        Console.WriteLine($"process CPU time {cpuBest:F2} s ({cpuBest / best:F2} cores busy on average) → {batch / cpuBest:F2} images per CPU-second; load average {LoadAverage()}");
        return 0;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static Tensor Pixels(IBackend backend, ClipVisionConfig c, int batch)
    {
        var t = backend.Empty(batch, c.NumChannels, c.ImageSize, c.ImageSize);
        backend.FillNormal(t, 7, (ulong)batch);
        return t;
    }

    /// <summary>Multiply-adds ×2 of one image: patch GEMM, per layer QKV/out/MLP GEMMs and the two attention products, projection.</summary>
    private static double Gflop(ClipVisionConfig c)
    {
        double t = c.Tokens, w = c.HiddenSize, i = c.IntermediateSize, p = c.NumChannels * c.PatchSize * c.PatchSize;
        double perLayer = t * w * w * 4 + t * w * i * 2 + t * t * w * 2;
        return 2 * ((t - 1) * p * w + c.NumHiddenLayers * perLayer + w * c.ProjectionDim) / 1e9;
    }
}
