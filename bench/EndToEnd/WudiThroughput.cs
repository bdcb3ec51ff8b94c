using System.Diagnostics;
using System.Globalization;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Bench.EndToEnd;

/// <summary>
/// WUDI whole-merge compute time on a ViT-B/32-shaped synthetic zoo (default: 12 blocks of
/// q/k/v/out [d,d], fc1 [mlp,d], fc2 [d,mlp]; d = 768, mlp = 3072; 8 experts; 300 Adam steps),
/// built in memory. Every distinct layer shape is timed through the method's own code
/// (<see cref="WudiGram.Build"/> for C and D, then <see cref="WudiMethod.Adam"/>), and the whole
/// merge is the sum over layers. With <c>--measure-iters K</c> below <c>--iters</c>, only K steps run
/// and the per-step time is extrapolated to the full count (the output says so). FLOPs: per layer
/// N·(in²·out [SYRK] + 2·out·in² [τᵢĜᵢ]) once, then 2·out·in² per step. The roofline is the backend's
/// own SGEMM rate measured here on each layer's per-step GEMM shape: the time the layer's FLOPs would
/// take at that rate, against the time it took.
/// </summary>
public static class WudiThroughput
{
    public static int Run(string[] args)
    {
        var o = Options(args);
        int blocks = o.Int("blocks", 12), d = o.Int("d", 768), mlp = o.Int("mlp", 3072), experts = o.Int("experts", 8);
        int iters = o.Int("iters", 300), measure = Math.Min(iters, o.Int("measure-iters", iters));
        using var be = Device.CudaDevice.ForEndToEnd(o.Str("device", "cpu"), o.Int("threads", 0));
        if (be is null) return 0;

        (string Name, int Out, int In, int PerBlock)[] shapes =
        [
            ("q/k/v/out_proj", d, d, 4),
            ("fc1", mlp, d, 1),
            ("fc2", d, mlp, 1),
        ];
        string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':')[1].Trim() ?? "unknown cpu";
        Console.WriteLine($"device {be.Name}; {cpu}; {Environment.ProcessorCount} cores; .NET {Environment.Version}");
        Console.WriteLine($"zoo: {blocks} blocks × (4×[{d},{d}] + [{mlp},{d}] + [{d},{mlp}]), {experts} experts, {iters} Adam steps" +
            (measure < iters ? $" (measured {measure} steps per shape, extrapolated to {iters})" : ""));

        Console.WriteLine();
        Console.WriteLine("| per-step GEMM [out,in]×[in,in] | GFLOP | best of 3 (s) | GFLOP/s |");
        Console.WriteLine("|---|---|---|---|");
        var gemmRate = new Dictionary<string, double>();
        foreach (var (name, outDim, inDim, _) in shapes)
        {
            using var a = be.Empty(outDim, inDim);
            using var c = be.Empty(inDim, inDim);
            using var r = be.Empty(outDim, inDim);
            be.FillNormal(a, 1, 1);
            be.FillNormal(c, 1, 2);
            double flop = 2.0 * outDim * inDim * inDim;
            double best = double.MaxValue;
            for (int k = 0; k < 3; k++)
            {
                var sw = Stopwatch.StartNew();
                be.Gemm(a, false, c, false, r, 2f, 0f);
                be.SumSquares(r);
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            gemmRate[name] = flop / best / 1e9;
            Console.WriteLine($"| {name} [{outDim},{inDim}]×[{inDim},{inDim}] | {flop / 1e9:F2} | {best:F3} | {flop / best / 1e9:F1} |");
        }

        Console.WriteLine();
        Console.WriteLine("| layer shape | layers | C,D build (s) | per step (s) | per layer (s) | all layers (s) | TFLOP (all layers) | GFLOP/s | % of SGEMM |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        double total = 0, totalFlop = 0, roofline = 0;
        foreach (var (name, outDim, inDim, perBlock) in shapes)
        {
            var (build, step) = TimeLayer(be, outDim, inDim, experts, measure);
            int layers = blocks * perBlock;
            double layer = build + iters * step;
            double flop = experts * 3.0 * outDim * inDim * inDim + iters * 2.0 * outDim * inDim * inDim;
            total += layers * layer;
            totalFlop += layers * flop;
            roofline += layers * flop / (gemmRate[name] * 1e9);
            double rate = flop / layer / 1e9;
            Console.WriteLine($"| {name} [{outDim},{inDim}] | {layers} | {build:F3} | {step:F4} | {layer:F2} | {layers * layer:F1} | {layers * flop / 1e12:F2} | {rate:F2} | {100 * rate / gemmRate[name]:F0}% |");
        }
        Console.WriteLine();
        Console.WriteLine($"whole merge (compute): {total:F1} s{(measure < iters ? " (extrapolated)" : "")} for {totalFlop / 1e12:F2} TFLOP = {totalFlop / total / 1e9:F2} GFLOP/s; " +
            $"at the measured per-shape SGEMM rates it would take {roofline:F1} s, so {100 * roofline / total:F0}% of the GEMM roofline");
        return 0;
    }

    /// <summary>Seconds to build C and D from the experts' task vectors, and seconds per Adam step.</summary>
    private static (double Build, double Step) TimeLayer(IBackend be, int outDim, int inDim, int experts, int steps)
    {
        var models = Enumerable.Range(0, experts).ToArray();
        var build = Stopwatch.StartNew();
        using var gram = WudiGram.Build(be, [outDim], inDim, models, i =>
        {
            var t = be.Empty(outDim, inDim);
            be.FillNormal(t, 7, (ulong)i);
            be.Scale(t, 1e-3f, t);
            return [t];
        }, withLossConstant: false, "bench");
        be.SumSquares(gram.C);
        build.Stop();
        var m = gram.TakeTaskSum();
        try
        {
            var settings = new WudiMethod.Settings(steps, 1e-5f, false, 0, 1, false, 1);
            var run = Stopwatch.StartNew();
            WudiMethod.Adam(be, gram, m, settings, new Dictionary<string, object>());
            be.SumSquares(m[0]);
            run.Stop();
            return (build.Elapsed.TotalSeconds, steps == 0 ? 0 : run.Elapsed.TotalSeconds / steps);
        }
        finally
        {
            foreach (var t in m) t.Dispose();
        }
    }

    private sealed class Parsed(Dictionary<string, string> values)
    {
        public int Int(string key, int def) => values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : def;

        public string Str(string key, string def) => values.GetValueOrDefault(key, def);
    }

    private static Parsed Options(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"expected --option value, got '{args[i]}'");
            values[args[i][2..]] = args[i + 1];
        }
        return new Parsed(values);
    }
}
