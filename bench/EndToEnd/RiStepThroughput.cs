using System.Diagnostics;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Optim;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Training;

namespace TaskMerge.Bench.EndToEnd;

/// <summary>
/// One RI student step of ViT-B/32 (<see cref="ClipVisionTraining"/>): forward with saved
/// activations, backward to every weight, AdamW, on random N(0, 0.02²) weights and random pixels.
/// One warm-up step of the same batch, then timed steps, each split into forward (with the
/// download of the [B, E] embeddings), backward and optimizer, plus one teacher forward
/// (<see cref="ClipVisionTraining.Embed"/>, no kept activations). Reports images/s of the student
/// step, of a full uncached RI step (student + the θ0 and θᵢ teacher forwards) and the GEMM FLOP
/// rate (forward 2·params-per-token FLOPs + attention, backward 2× forward). Arguments:
/// <c>e2e-ri-step [BATCH=32] [REPEATS=2] [DEVICE=cpu] [THREADS=0]</c>.
/// </summary>
public static class RiStepThroughput
{
    public static int Run(string[] args)
    {
        int batch = args.Length > 0 ? int.Parse(args[0]) : 32;
        int repeats = args.Length > 1 ? int.Parse(args[1]) : 2;
        string device = args.Length > 2 ? args[2] : "cpu";
        int threads = args.Length > 3 ? int.Parse(args[3]) : 0;
        var config = new ClipVisionConfig();
        using var backend = Device.CudaDevice.ForEndToEnd(device, threads);
        if (backend is null) return 0;
        var rng = new Random(1);
        var weights = ClipVisionTraining.ParameterShapes(config).ToDictionary(p => p.Name, p =>
        {
            var a = new float[p.Shape.Aggregate(1, (x, y) => x * y)];
            for (int i = 0; i < a.Length; i++) a[i] = (float)(0.02 * (rng.NextDouble() * 2 - 1) * Math.Sqrt(3));
            return a;
        });
        using var model = new ClipVisionTraining(backend, config, weights);
        using var x = backend.Empty(batch, config.NumChannels, config.ImageSize, config.ImageSize);
        backend.FillNormal(x, 7, 0);
        using var dz = backend.Empty(batch, config.ProjectionDim);
        backend.FillNormal(dz, 7, 1);
        var settings = new AdamSettings(1e-6f, WeightDecay: 1e-4f, Decoupled: true);

        var rows = new List<(double Forward, double Backward, double Optimizer, double Teacher)>();
        long planBytes = 0;
        for (int step = 1; step <= repeats + 1; step++)
        {
            var sw = Stopwatch.StartNew();
            var act = model.Forward(x);
            _ = act.Embeds.ToArray();
            planBytes = 4 * act.Elements;
            double f = sw.Elapsed.TotalSeconds;
            sw.Restart();
            model.ZeroGradients();
            model.Backward(act, dz);
            _ = model.Gradients[ClipVisionTraining.ClassEmbedding].ToArray();
            double b = sw.Elapsed.TotalSeconds;
            sw.Restart();
            model.OptimizerStep(step, settings);
            _ = model.Parameters[ClipVisionTraining.ClassEmbedding].ToArray();
            double o = sw.Elapsed.TotalSeconds;
            sw.Restart();
            backend.DetachToHost(model.Embed(x));
            double t = sw.Elapsed.TotalSeconds;
            if (step > 1) rows.Add((f, b, o, t));
        }
        var best = rows.MinBy(r => r.Forward + r.Backward + r.Optimizer);
        double total = best.Forward + best.Backward + best.Optimizer;
        Console.WriteLine($"ViT-B/32 RI student step, device {backend.Name}, batch {batch}, {Environment.ProcessorCount} cores, load average {LoadAverage()}");
        Console.WriteLine($"activation plan {planBytes / (double)(1L << 30):F2} GiB");
        double flops = 3 * ForwardFlops(config) * batch;
        double ri = total + 2 * best.Teacher;
        Console.WriteLine($"best of {repeats}: forward {best.Forward:F3} s, backward {best.Backward:F3} s, AdamW {best.Optimizer:F3} s = {total:F3} s → {batch / total:F2} images/s (student step, {flops / total / 1e9:F1} GFLOP/s)");
        Console.WriteLine($"teacher forward {best.Teacher:F3} s; uncached RI step (student + 2 teachers) {ri:F3} s → {batch / ri:F2} images/s");
        Console.WriteLine($"whole RI run, 2500 steps: {2500 * ri / 60:F1} min uncached, {2500 * total / 60:F1} min with every teacher output cached");
        return 0;
    }

    /// <summary>Matrix-multiply FLOPs of one image's forward: patch GEMM, per layer q/k/v/out, QKᵀ and PV, fc1/fc2, projection.</summary>
    public static double ForwardFlops(ClipVisionConfig c)
    {
        double t = c.Tokens, w = c.HiddenSize, i = c.IntermediateSize;
        double patch = 2.0 * (t - 1) * c.NumChannels * c.PatchSize * c.PatchSize * w;
        double layer = 2 * t * w * w * 4 + 2 * 2 * t * t * w + 2 * 2 * t * w * i;
        return patch + c.NumHiddenLayers * layer + 2 * w * c.ProjectionDim;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
