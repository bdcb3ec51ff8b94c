using System.Diagnostics;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;

namespace TaskMerge.Bench.EndToEnd;

/// <summary>
/// CPU compute time of <c>tsv_m</c>, <c>iso_c</c> and <c>iso_cts</c> on in-memory ViT-B/32-shaped
/// experts (CLIPVisionModel: 12 blocks × {q, k, v, out 768×768; fc1 3072×768; fc2 768×3072},
/// position embedding 50×768, plus biases, LayerNorms and the 768×3×32×32 patch embedding), 8
/// low-rank-plus-noise experts, with native LAPACK and with the managed provider. One tensor of each
/// matrix shape is timed per (provider, method); the whole-model time is extrapolated from them by
/// the tensor counts (48 attention, 12 fc1, 12 fc2, 1 position embedding) plus the measured
/// non-matrix tensors, and printed as such. IO is not included: this measures the method kernels.
/// With <c>--device cuda</c> the same runs on the device backend (SVDs on cuSOLVER in float64) instead
/// of the CPU providers; every timed op ends with a scalar download, so device work is included.
/// Usage: <c>e2e-spectral [--device cpu|cuda] [--providers native,managed] [--methods tsv_m,iso_c,iso_cts]
/// [--layers attn,fc1,fc2,pos] [--experts 8] [--threads 0]</c>.
/// </summary>
public static class SpectralThroughput
{
    private sealed record MatrixType(string Key, string Label, string TensorName, int Rows, int Cols, int PerModel);

    private static readonly MatrixType[] MatrixTypes =
    [
        new("attn", "attn q/k/v/out 768×768", "vision_model.encoder.layers.0.self_attn.q_proj.weight", 768, 768, 48),
        new("fc1", "mlp.fc1 3072×768", "vision_model.encoder.layers.0.mlp.fc1.weight", 3072, 768, 12),
        new("fc2", "mlp.fc2 768×3072", "vision_model.encoder.layers.0.mlp.fc2.weight", 768, 3072, 12),
        new("pos", "position_embedding 50×768", "vision_model.embeddings.position_embedding.weight", 50, 768, 1),
    ];

    /// <summary>Non-matrix tensors of CLIPVisionModel ViT-B/32: shape and count.</summary>
    private static readonly (int[] Shape, int Count)[] NonMatrix =
    [
        ([768], 12 * 9 + 5),          // per block: q/k/v/out/fc2 biases, 2 LayerNorms × (weight, bias); class embedding, pre/post LayerNorm
        ([3072], 12),                 // fc1 biases
        ([768, 3, 32, 32], 1),        // patch embedding
    ];

    public static int Run(string[] args)
    {
        var providers = Option(args, "--providers", "native,managed").Split(',');
        var methods = Option(args, "--methods", "tsv_m,iso_c,iso_cts").Split(',');
        var layers = Option(args, "--layers", "attn,fc1,fc2,pos").Split(',');
        int experts = int.Parse(Option(args, "--experts", "8"));
        int threads = int.Parse(Option(args, "--threads", "0"));

        string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':')[1].Trim() ?? "unknown cpu";
        Console.WriteLine($"# e2e-spectral: {cpu}, {Environment.ProcessorCount} cores, {experts} experts, .NET {Environment.Version}");
        Console.WriteLine($"# native LAPACK: {(CpuLinearAlgebra.NativeAvailable(out string lib) ? lib : "none (" + lib + ")")}");
        Console.WriteLine($"# load average at start: {LoadAverage()}");
        Console.WriteLine("# every time is wall seconds / process CPU seconds (all threads)");

        bool cuda = Option(args, "--device", "cpu").Trim().ToLowerInvariant() is "cuda" or "gpu";
        IBackend? device = cuda ? Device.CudaDevice.ForEndToEnd("cuda", threads) : null;
        if (cuda && device is null) return 0;
        foreach (string provider in cuda ? ["cuda"] : providers)
        {
            IBackend be = device ?? new CpuBackend(threads, Enum.Parse<LapackProvider>(provider, ignoreCase: true));
            string engine = be switch
            {
                CpuBackend c => c.LinearAlgebra.Description,
                TaskMerge.Engine.Tensors.Ilgpu.IlgpuBackend g => $"{g.LinearAlgebraEngine}; matrix ops {g.MatrixEngine}",
                _ => "",
            };
            Console.WriteLine($"\n## provider {provider}: {engine}, {be.Name}");
            Warmup(be, methods);
            Console.WriteLine("\nop | wall / cpu s (best of 2)");
            Console.WriteLine("---|---");
            foreach (var (m, n) in new[] { (768, 768), (3072, 768), (768, 3072) })
                Console.WriteLine($"svd {m}×{n} | {TimeSvd(be, m, n).Format("F2")}");
            Console.WriteLine($"gemm 3072×768 · 768×768 (float32) | {TimeGemm(be).Format("F2")}");

            var perTensor = new Dictionary<(string Method, string Layer), Timing>();
            var timed = MatrixTypes.Where(t => layers.Contains(t.Key)).ToArray();
            foreach (var type in timed)
            {
                using var group = Synthetic(be, type.TensorName, [type.Rows, type.Cols], experts, 7);
                foreach (string method in methods)
                {
                    var t = Time(() => Finish(be, Merge(be, method, group)));
                    perTensor[(method, type.Key)] = t;
                    Console.Error.WriteLine($"  {provider} {method} {type.Label}: {t.Format("F2")} s (load {LoadAverage()})");
                }
            }

            Console.WriteLine("\nmethod | " + string.Join(" | ", timed.Select(t => $"{t.Label} (s per tensor, ×{t.PerModel})"))
                + " | non-matrix tensors (s, all) | ViT-B/32 total (s, extrapolated)");
            Console.WriteLine("---|" + string.Concat(Enumerable.Repeat("---|", timed.Length)) + "---|---");
            foreach (string method in methods)
            {
                var nonMatrix = new Timing(0, 0);
                foreach (var (shape, count) in NonMatrix)
                {
                    using var group = Synthetic(be, "vision_model.encoder.layers.0.layer_norm1.weight", shape, experts, 11);
                    nonMatrix += count * Time(() => Finish(be, Merge(be, method, group)));
                }
                var total = nonMatrix;
                foreach (var t in timed) total += t.PerModel * perTensor[(method, t.Key)];
                Console.WriteLine($"{method} | " + string.Join(" | ", timed.Select(t => perTensor[(method, t.Key)].Format("F2")))
                    + $" | {nonMatrix.Format("F2")} | {total.Format("F0")}{(timed.Length == MatrixTypes.Length ? "" : " (timed layer types only)")}");
            }
        }
        Console.WriteLine($"\n# load average at end: {LoadAverage()}");
        device?.Dispose();
        return 0;
    }

    /// <summary>Waits for a result (a scalar download, which on a device follows all its work) and frees it.</summary>
    private static void Finish(IBackend be, Tensor t)
    {
        be.MaxAbs(t);
        t.Dispose();
    }

    private static string Option(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    /// <summary>Wall and process CPU seconds of one call (CPU time is the figure that survives a shared, loaded machine).</summary>
    private static Timing Time(Action action)
    {
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        action();
        double wall = sw.Elapsed.TotalSeconds;
        return new Timing(wall, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds);
    }

    private readonly record struct Timing(double Wall, double Cpu)
    {
        public static Timing operator +(Timing a, Timing b) => new(a.Wall + b.Wall, a.Cpu + b.Cpu);

        public static Timing operator *(double k, Timing a) => new(k * a.Wall, k * a.Cpu);

        public static Timing Min(Timing a, Timing b) => a.Wall <= b.Wall ? a : b;

        public string Format(string f) => $"{Wall.ToString(f)} / {Cpu.ToString(f)}";
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";

    /// <summary>Runs every method a few times on a small matrix so that the timed runs use fully optimised JIT code.</summary>
    private static void Warmup(IBackend be, string[] methods)
    {
        using var group = Synthetic(be, "warmup.weight", [256, 192], 4, 3);
        for (int i = 0; i < 3; i++)
            foreach (string method in methods) Finish(be, Merge(be, method, group));
    }

    private static Timing TimeSvd(IBackend be, int m, int n)
    {
        int k = Math.Min(m, n);
        using var a = be.Empty(m, n);
        be.FillNormal(a, 5, 1);
        using var u = be.Empty(m, k);
        using var s = be.Empty(k);
        using var vt = be.Empty(k, n);
        void Run()
        {
            be.Svd(a, u, s, vt);
            be.MaxAbs(vt);
        }
        return Timing.Min(Time(Run), Time(Run));
    }

    private static Timing TimeGemm(IBackend be)
    {
        using var a = be.Empty(3072, 768);
        using var b = be.Empty(768, 768);
        using var c = be.Empty(3072, 768);
        be.FillNormal(a, 5, 2);
        be.FillNormal(b, 5, 3);
        void Run()
        {
            be.Gemm(a, false, b, false, c);
            be.MaxAbs(c);
        }
        return Timing.Min(Time(Run), Time(Run));
    }

    private static Tensor Merge(IBackend be, string method, SyntheticGroup g)
    {
        var m = MethodRegistry.Create(method);
        var parameters = new MergeParameters(m.Parameters, new Dictionary<string, ParameterSetting>(),
            Enumerable.Range(0, g.Experts.Count).Select(_ => (IReadOnlyDictionary<string, ParameterSetting>)new Dictionary<string, ParameterSetting>()).ToList(), []);
        return m.Merge(new TensorGroup
        {
            Name = g.Name, Depth = 0, Base = g.Base, Backend = be, Parameters = parameters, Diagnostics = new Dictionary<string, object>(),
            Experts = g.Experts.Select((e, i) => new ExpertTensor(i, e)).ToList(),
        });
    }

    private sealed record SyntheticGroup(string Name, Tensor Base, IReadOnlyList<Tensor> Experts) : IDisposable
    {
        public void Dispose()
        {
            Base.Dispose();
            foreach (var e in Experts) e.Dispose();
        }
    }

    /// <summary>θ₀ ~ N(0, 0.02²); θᵢ = θ₀ + AᵢBᵢ/√rank·0.01 (rank 32) + N(0, 0.001²) for matrices, θ₀ + N(0, 0.01²) otherwise.</summary>
    private static SyntheticGroup Synthetic(IBackend be, string name, int[] shape, int experts, ulong seed)
    {
        var baseT = be.Empty(shape);
        be.FillNormal(baseT, seed, 0);
        be.Scale(baseT, 0.02f, baseT);
        var list = new List<Tensor>();
        for (int e = 0; e < experts; e++)
        {
            var x = be.Empty(shape);
            be.FillNormal(x, seed, (ulong)(3 * e + 1));
            if (shape.Length == 2)
            {
                const int rank = 32;
                be.Scale(x, 0.001f, x);
                using var a = be.Empty(shape[0], rank);
                using var b = be.Empty(rank, shape[1]);
                be.FillNormal(a, seed, (ulong)(3 * e + 2));
                be.FillNormal(b, seed, (ulong)(3 * e + 3));
                be.Gemm(a, false, b, false, x, 0.01f / MathF.Sqrt(rank), 1f);
            }
            else
            {
                be.Scale(x, 0.01f, x);
            }
            be.Add(baseT, x, x);
            list.Add(x);
        }
        return new SyntheticGroup(name, baseT, list);
    }
}
