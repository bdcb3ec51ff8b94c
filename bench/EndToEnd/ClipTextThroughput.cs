using System.Diagnostics;
using TaskMerge.Engine.Models;

namespace TaskMerge.Bench.EndToEnd;

/// <summary>
/// CLIP ViT-B/32 text-tower throughput, the cost of building zero-shot heads: random weights in
/// memory (HF <c>CLIPTextConfig</c> defaults: 12 layers, width 512, MLP 2048, 8 heads), one warm-up
/// forward, then timed forwards of BATCH prompts of TOKENS tokens (BOS, random ids, EOS). A head
/// costs classes × templates prompts (SUN397: 794). Reports prompts/s and GFLOP/s (compare with the
/// same machine's GEMM rate in bench/results/cpu-gemm.md). Arguments: <c>e2e-clip-text [BATCH=256] [TOKENS=20] [REPEATS=2] [DEVICE=cpu] [THREADS=0]</c>.
/// </summary>
public static class ClipTextThroughput
{
    public static int Run(string[] args)
    {
        int batch = args.Length > 0 ? int.Parse(args[0]) : 256;
        int tokens = args.Length > 1 ? int.Parse(args[1]) : 20;
        int repeats = args.Length > 2 ? int.Parse(args[2]) : 2;
        string device = args.Length > 3 ? args[3] : "cpu";
        int threads = args.Length > 4 ? int.Parse(args[4]) : 0;
        var config = new ClipTextConfig();
        using var backend = Device.CudaDevice.ForEndToEnd(device, threads);
        if (backend is null) return 0;
        using var model = ClipTextModel.Random(config, backend, seed: 1);
        var rng = new Random(3);
        var ids = new int[batch * tokens];
        for (int b = 0; b < batch; b++)
        {
            ids[b * tokens] = config.BosTokenId;
            for (int t = 1; t < tokens - 1; t++) ids[b * tokens + t] = rng.Next(49000);
            ids[b * tokens + tokens - 1] = config.EosTokenId;
        }
        using (model.Forward(ids.AsSpan(0, tokens), 1)) { }
        var times = new List<double>();
        for (int r = 0; r < repeats; r++)
        {
            var sw = Stopwatch.StartNew();
            using var o = model.Forward(ids, batch);
            _ = o.TextEmbeds!.ToArray();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        double best = times.Min();
        double gflop = Gflop(config, tokens) * batch;
        Console.WriteLine($"CLIP ViT-B/32 text tower (random weights), device {backend.Name}, {Environment.ProcessorCount} cores, load average {LoadAverage()}");
        Console.WriteLine($"batch {batch} × {tokens} tokens: best of {repeats} = {best:F2} s → {batch / best:F1} prompts/s ({gflop / best:F1} GFLOP/s over {gflop:F0} GFLOP); all runs: {string.Join(", ", times.Select(t => t.ToString("F2")))} s");
        return 0;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    /// <summary>Multiply-adds ×2 of one prompt: per layer QKV/out/MLP GEMMs and the two attention products (full T×T, as computed), projection.</summary>
    private static double Gflop(ClipTextConfig c, int t)
    {
        double w = c.HiddenSize, i = c.IntermediateSize;
        double perLayer = t * w * w * 4 + t * w * i * 2 + (double)t * t * w * 2;
        return 2 * (c.NumHiddenLayers * perLayer + w * c.ProjectionDim) / 1e9;
    }
}
