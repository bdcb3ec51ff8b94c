using System.Diagnostics;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Bench.EndToEnd;

/// <summary>
/// AWD at model granularity on a ViT-B/32-shaped synthetic zoo held in memory: 12 blocks of
/// q, k, v, out (768×768), fc1 (3072×768), fc2 (768×3072), i.e. 85 M included parameters per model,
/// a base and K experts (default 8). Times, on the same data: a plain pass over the experts (load
/// every expert tensor and form τᵢ, nothing else — the floor for any method that reads them), the
/// Gram pass and the optimisation (from the method's report), and the merge pass.
/// Arguments: <c>e2e-awd [EXPERTS] [ITERATIONS] [OPTIMIZER] [DEVICE] [GRANULARITY]</c>; at tensor and
/// row granularity the optimisation runs inside the merge pass.
/// </summary>
public static class AwdThroughput
{
    private const int D = 768, Ff = 3072, Blocks = 12;

    public static int Run(string[] args)
    {
        int k = args.Length > 0 ? int.Parse(args[0]) : 8;
        int iterations = args.Length > 1 ? int.Parse(args[1]) : 300;
        string optimizer = args.Length > 2 ? args[2] : "gd";
        string device = args.Length > 3 ? args[3] : "cpu";
        string granularity = args.Length > 4 ? args[4] : "model";
        using var be = Device.CudaDevice.ForEndToEnd(device, 0);
        if (be is null) return 0;

        var shapes = new List<(string Name, int[] Shape)>();
        for (int l = 0; l < Blocks; l++)
        {
            string p = $"vision_model.encoder.layers.{l}.";
            foreach (var n in new[] { "q_proj", "k_proj", "v_proj", "out_proj" }) shapes.Add((p + $"self_attn.{n}.weight", [D, D]));
            shapes.Add((p + "mlp.fc1.weight", [Ff, D]));
            shapes.Add((p + "mlp.fc2.weight", [D, Ff]));
        }
        var clock = Stopwatch.StartNew();
        var data = Generate(shapes, k);
        long parameters = shapes.Sum(s => (long)s.Shape[0] * s.Shape[1]);
        Console.WriteLine($"generated base + {k} experts × {parameters / 1e6:F1} M parameters ({(k + 1) * parameters * 4 / 1e9:F2} GB float32) in {clock.Elapsed.TotalSeconds:F1} s");

        Tensor Load(string name, int model)
        {
            var shape = shapes.First(s => s.Name == name).Shape;
            var t = be.Empty(shape);
            be.Upload(data[name][model + 1], t);
            return t;
        }

        var plainPass = Measure(() =>
        {
            foreach (var (name, _) in shapes)
            {
                using var b = Load(name, -1);
                for (int e = 0; e < k; e++)
                {
                    using var t = Load(name, e);
                    be.Sub(t, b, t);
                }
            }
        });

        var method = new AwdMethod();
        var ps = new MergeParameters(method.Parameters, new Dictionary<string, ParameterSetting>
        {
            ["iter_num"] = new ScalarSetting($"{iterations}"), ["optimizer"] = new ScalarSetting(optimizer), ["granularity"] = new ScalarSetting(granularity), ["lambda"] = new ScalarSetting("0.3"),
        }, Enumerable.Range(0, k).Select(_ => (IReadOnlyDictionary<string, ParameterSetting>)new Dictionary<string, ParameterSetting>()).ToList(), []);
        var report = new Dictionary<string, object>();
        var prepare = Measure(() => method.Prepare(new MergeContext
        {
            Tensors = shapes, ExpertCount = k, Load = Load, Backend = be, Parameters = ps, Report = report,
        }));

        var mergePass = Measure(() =>
        {
            foreach (var (name, _) in shapes) MergeOne(name);
        });

        void MergeOne(string name)
        {
            using var b = Load(name, -1);
            var experts = Enumerable.Range(0, k).Select(e => new ExpertTensor(e, Load(name, e))).ToList();
            using (var merged = method.Merge(new TensorGroup
            {
                Name = name, Depth = 0, Base = b, Experts = experts, Backend = be, Parameters = ps, Diagnostics = new Dictionary<string, object>(),
            }))
            {
                be.Download(merged, new float[merged.Length]);
            }
            foreach (var e in experts) e.Values.Dispose();
        }

        string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':')[1].Trim() ?? "unknown cpu";
        Console.WriteLine($"device {be.Name}, {cpu}, {Environment.ProcessorCount} cores; K = {k}, {optimizer}, {iterations} iterations, {granularity} granularity");
        Console.WriteLine($"load average {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine($"plain pass over the experts (load + τ):    {plainPass}");
        Console.WriteLine($"AWD prepare (Gram pass + optimisation):    {prepare}");
        if (report.TryGetValue("gram_pass_seconds", out var gram)) Console.WriteLine($"  Gram pass:                               wall {(double)gram:F2} s");
        if (report.TryGetValue("optimize_seconds", out var optimize))
            Console.WriteLine($"  optimisation:                            wall {(double)optimize:F4} s ({report["prepare_passes_over_experts"]} pass(es) over the experts in prepare)");
        Console.WriteLine($"merge pass (τ̂ᵢ = τᵢ − δ, task arithmetic): {mergePass}");
        if (granularity == "model")
            Console.WriteLine($"L_O {(double)report["loss_orth_before"]:F5} → {(double)report["loss_orth_after"]:F5}, ‖δ‖ {(double)report["delta_norm"]:G4}");
        else
            Console.WriteLine($"mean L_O over tensors {(double)report["mean_loss_orth_before"]:F5} → {(double)report["mean_loss_orth_after"]:F5}");
        return 0;
    }

    private sealed record Cost(double Wall, double User, double Sys)
    {
        public override string ToString() => $"wall {Wall:F2} s, cpu {User:F2} s user + {Sys:F2} s sys";
    }

    private static Cost Measure(Action body)
    {
        var p = System.Diagnostics.Process.GetCurrentProcess();
        var (user, sys) = (p.UserProcessorTime, p.PrivilegedProcessorTime);
        var clock = Stopwatch.StartNew();
        body();
        double wall = clock.Elapsed.TotalSeconds;
        p.Refresh();
        return new Cost(wall, (p.UserProcessorTime - user).TotalSeconds, (p.PrivilegedProcessorTime - sys).TotalSeconds);
    }

    /// <summary>θ₀ ~ U(−0.02, 0.02); τᵢ = shared·(0.5 + 0.1i) + own, each ~ U(−0.001, 0.001), so the task vectors overlap.</summary>
    private static Dictionary<string, float[][]> Generate(List<(string Name, int[] Shape)> shapes, int k)
    {
        var data = new Dictionary<string, float[][]>();
        ulong state = 0x9E3779B97F4A7C15UL;
        float Next()
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            return ((int)(state >> 40) - (1 << 23)) * (1f / (1 << 23));
        }
        foreach (var (name, shape) in shapes)
        {
            int n = shape[0] * shape[1];
            var models = new float[k + 1][];
            var theta0 = models[0] = new float[n];
            var shared = new float[n];
            for (int i = 0; i < n; i++)
            {
                theta0[i] = 0.02f * Next();
                shared[i] = 0.001f * Next();
            }
            for (int e = 0; e < k; e++)
            {
                var m = models[e + 1] = new float[n];
                float a = 0.5f + 0.1f * e;
                for (int i = 0; i < n; i++) m[i] = theta0[i] + a * shared[i] + 0.001f * Next();
            }
            data[name] = models;
        }
        return data;
    }
}
