using System.Text.Json.Nodes;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.Cli;

namespace TaskMerge.Engine.Tests.Methods;

public class AwdTests
{
    private static readonly CpuBackend Cpu = new(2);

    /// <summary>K task vectors sharing a common direction (so δ has something to remove) plus task-specific parts.</summary>
    private static float[][] SharedTaskVectors(Random r, int k, int n, double shared = 0.6, double scale = 1.0)
    {
        var common = Enumerable.Range(0, n).Select(_ => Normal(r)).ToArray();
        return Enumerable.Range(0, k).Select(i =>
        {
            double a = shared * (0.5 + i * 0.4);
            return Enumerable.Range(0, n).Select(j => (float)(scale * (a * common[j] + Normal(r)) / Math.Sqrt(n))).ToArray();
        }).ToArray();
    }

    private static double Normal(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    private static double[] ToDouble(float[] x) => x.Select(v => (double)v).ToArray();

    private static double[][] Flatten(IReadOnlyList<float[][]> parts, int k) =>
        Enumerable.Range(0, k).Select(i => parts.SelectMany(p => p[i]).Select(v => (double)v).ToArray()).ToArray();

    private static double MaxRelDiff(double[] expected, double[] actual)
    {
        double scale = Math.Max(1e-30, expected.Max(Math.Abs)), m = 0;
        for (int i = 0; i < expected.Length; i++) m = Math.Max(m, Math.Abs(expected[i] - actual[i]));
        return m / scale;
    }

    private static AwdSettings Settings(string optimizer, double lr, int iterations, double alpha, double momentum = 0.9, double wd = 0) =>
        new(Enum.Parse<AwdOptimizer>(optimizer, true), lr, iterations, alpha, momentum, wd);

    private static AwdBlockOps Ops(string granularity, int[] shape) =>
        granularity == "row" ? AwdBlockOps.PerRow(Cpu, shape[0], shape[1]) : AwdBlockOps.Whole(Cpu);

    private static (int, int)[] Blocks(string granularity, int[] shape, int n) =>
        granularity == "row" ? AwdReference.RowBlocks(shape[0], shape[1]) : AwdReference.WholeBlock(n);

    /// <summary>Parts of one problem: model granularity has two tensors, tensor and row granularity one.</summary>
    private static int[][] PartShapes(string granularity) => granularity == "model" ? [[3, 5], [4, 2]] : granularity == "row" ? [[6, 40]] : [[6, 5]];

    // ---------------------------------------------------------------- analytic gradient

    [Theory]
    [InlineData("model", 0.1)]
    [InlineData("tensor", 0.1)]
    [InlineData("row", 0.05)]
    [InlineData("tensor", 0.0)]
    public void Analytic_gradient_matches_float64_central_differences(string granularity, double alpha)
    {
        const int k = 4;
        var r = new Random(17);
        var shapes = PartShapes(granularity);
        var partTaus = shapes.Select(s => SharedTaskVectors(r, k, s[0] * s[1])).ToList();
        var partDelta = shapes.Select(s => Enumerable.Range(0, s[0] * s[1]).Select(_ => (float)(0.05 * Normal(r))).ToArray()).ToList();

        var tensors = partTaus.Select((p, i) => (IReadOnlyList<Tensor>)p.Select(t => Cpu.Wrap(t, shapes[i])).ToList()).ToList();
        var delta = partDelta.Select((d, i) => Cpu.Wrap(d, shapes[i])).ToList();
        var grad = shapes.Select(s => Cpu.Zeros(s)).ToList();
        using var ops = Ops(granularity, shapes[0]);
        using var solver = new AwdFullSpaceSolver(Cpu, new InMemoryTaskVectors(tensors), ops, k, Settings("gd", 0.01, 1, alpha));
        double loss = solver.Gradient(delta, grad);

        var taus = Flatten(partTaus, k);
        var d0 = partDelta.SelectMany(d => d).Select(v => (double)v).ToArray();
        var blocks = Blocks(granularity, shapes[0], d0.Length);
        Assert.Equal(AwdReference.Loss(taus, d0, blocks, alpha), loss, 1e-9);
        var analytic = grad.SelectMany(g => g.ToArray()).Select(v => (double)v).ToArray();
        var fd = new double[d0.Length];
        const double h = 1e-6;
        for (int i = 0; i < d0.Length; i++)
        {
            var plus = (double[])d0.Clone();
            var minus = (double[])d0.Clone();
            plus[i] += h;
            minus[i] -= h;
            fd[i] = (AwdReference.Loss(taus, plus, blocks, alpha) - AwdReference.Loss(taus, minus, blocks, alpha)) / (2 * h);
        }
        Assert.True(MaxRelDiff(fd, analytic) < 1e-5, $"max relative difference {MaxRelDiff(fd, analytic):E2}");
        Assert.True(MaxRelDiff(fd, AwdReference.Gradient(taus, d0, blocks, alpha)) < 1e-7);
    }

    // ---------------------------------------------------------------- K-coefficient path vs full space

    public static TheoryData<string, string, double, double, double, double> PathCases => new()
    {
        { "model", "gd", 0.05, 0.01, 0.0, 0.0 },
        { "tensor", "gd", 0.05, 0.1, 0.0, 0.0 },
        { "row", "gd", 0.05, 0.01, 0.0, 0.0 },
        { "tensor", "sgd", 0.01, 0.02, 0.9, 0.01 },
        { "row", "sgd", 0.01, 0.005, 0.5, 0.1 },
        { "model", "sgd", 0.005, 0.05, 0.9, 0.0 },
    };

    [Theory]
    [MemberData(nameof(PathCases))]
    public void Coefficient_path_equals_full_space_iteration(string granularity, string optimizer, double lr, double alpha, double momentum, double wd)
    {
        const int k = 4, iterations = 300;
        var r = new Random(5);
        var shapes = PartShapes(granularity);
        var partTaus = shapes.Select(s => SharedTaskVectors(r, k, s[0] * s[1], shared: 1.0)).ToList();
        var settings = Settings(optimizer, lr, iterations, alpha, momentum, wd);
        var tensors = partTaus.Select((p, i) => (IReadOnlyList<Tensor>)p.Select(t => Cpu.Wrap(t, shapes[i])).ToList()).ToList();
        var source = new InMemoryTaskVectors(tensors);
        using var ops = Ops(granularity, shapes[0]);

        var gram = TaskVectorGram.Compute(source, ops, k);
        var (coefficients, summary) = AwdCoefficientSolver.Solve(gram, ops.Blocks, k, settings);
        var coefficientDelta = tensors.SelectMany(t =>
        {
            using var d = AwdCoefficientSolver.Delta(Cpu, ops, t, coefficients, k);
            return d.ToArray();
        }).Select(v => (double)v).ToArray();

        var taus = Flatten(partTaus, k);
        var reference = AwdReference.Solve(taus, Blocks(granularity, shapes[0], taus[0].Length), optimizer, lr, iterations, alpha, momentum, wd);
        Assert.True(reference.Max(Math.Abs) > 1e-3, "δ should move away from 0 in this case");
        double vsReference = MaxRelDiff(reference, coefficientDelta);
        Assert.True(vsReference <= 1e-6, $"K-coefficient δ vs float64 full-space δ: max relative difference {vsReference:E2}");

        using var full = new AwdFullSpaceSolver(Cpu, source, ops, k, settings);
        var fullSummary = full.Run();
        var fullDelta = Enumerable.Range(0, tensors.Count).SelectMany(i => full.TakeDelta(i)!.ToArray()).Select(v => (double)v).ToArray();
        double vsFloat32 = MaxRelDiff(coefficientDelta, fullDelta);
        Assert.True(vsFloat32 <= 1e-4, $"K-coefficient δ vs the engine's float32 full-space δ: max relative difference {vsFloat32:E2}");
        Assert.Equal(summary.OrthAfter, fullSummary.OrthAfter, 1e-5);
        Assert.True(summary.LossAfter < summary.LossBefore);
    }

    // ---------------------------------------------------------------- the method on an in-memory model

    private sealed record ModelData(List<(string Name, int[] Shape)> Tensors, Dictionary<string, float[]> Base, Dictionary<string, float[][]> Experts);

    private static ModelData MakeModel(int k, int seed, double shared = 0.8)
    {
        var r = new Random(seed);
        var names = new List<(string, int[])>
        {
            ("layers.0.attn.q.weight", [6, 48]), ("layers.0.attn.q.bias", [6]), ("layers.0.mlp.fc1.weight", [12, 48]),
            ("layers.1.attn.q.weight", [6, 48]), ("layers.1.mlp.fc2.weight", [8, 96]), ("embeddings.weight", [5, 48]),
        };
        var b = new Dictionary<string, float[]>();
        var e = new Dictionary<string, float[][]>();
        foreach (var (name, shape) in names)
        {
            int n = shape.Aggregate(1, (x, y) => x * y);
            b[name] = Enumerable.Range(0, n).Select(_ => (float)(0.05 * Normal(r))).ToArray();
            var taus = SharedTaskVectors(r, k, n, shared, scale: 0.5);
            e[name] = taus.Select(t => t.Select((v, i) => v + b[name][i]).ToArray()).ToArray();
        }
        return new ModelData(names, b, e);
    }

    private static MergeParameters Parameters(IMergeMethod m, Dictionary<string, ParameterSetting> globals, int k,
        Dictionary<string, string>[]? perModel = null)
    {
        var warnings = new List<string>();
        var per = Enumerable.Range(0, k).Select(i => (IReadOnlyDictionary<string, ParameterSetting>)(perModel?[i] ?? [])
            .ToDictionary(kv => kv.Key, kv => (ParameterSetting)new ScalarSetting(kv.Value))).ToList();
        var ps = new MergeParameters(m.Parameters, globals, per, warnings);
        Assert.Empty(warnings);
        return ps;
    }

    private static Dictionary<string, ParameterSetting> Globals(params (string Key, string Value)[] kv) =>
        kv.ToDictionary(x => x.Key, x => (ParameterSetting)(x.Key == "exclude_keys" ? new StringListSetting(x.Value.Split(',')) : new ScalarSetting(x.Value)));

    private static TensorGroup Group(ModelData d, string name, MergeParameters ps, Dictionary<string, object> diagnostics)
    {
        var shape = d.Tensors.Single(t => t.Name == name).Shape;
        return new TensorGroup
        {
            Name = name, Depth = 0, Base = Cpu.Wrap((float[])d.Base[name].Clone(), shape),
            Experts = d.Experts[name].Select((x, i) => new ExpertTensor(i, Cpu.Wrap((float[])x.Clone(), shape))).ToList(),
            Backend = Cpu, Parameters = ps, Diagnostics = diagnostics,
        };
    }

    private static Dictionary<string, object> Prepare(IMergeMethod m, ModelData d, MergeParameters ps)
    {
        var report = new Dictionary<string, object>();
        m.Prepare(new MergeContext
        {
            Tensors = d.Tensors, ExpertCount = d.Experts.First().Value.Length, Backend = Cpu, Parameters = ps, Report = report,
            Load = (name, model) => Cpu.Wrap((float[])(model < 0 ? d.Base[name] : d.Experts[name][model]).Clone(),
                d.Tensors.Single(t => t.Name == name).Shape),
        });
        return report;
    }

    /// <summary>Prepare, then merge every tensor; returns outputs, the method report and per-tensor diagnostics.</summary>
    private static (Dictionary<string, float[]> Out, Dictionary<string, object> Report, Dictionary<string, Dictionary<string, object>> Diag)
        RunAwd(ModelData d, MergeParameters ps, IMergeMethod? method = null)
    {
        method ??= new AwdMethod();
        var report = Prepare(method, d, ps);
        var outs = new Dictionary<string, float[]>();
        var diag = new Dictionary<string, Dictionary<string, object>>();
        foreach (var (name, _) in d.Tensors)
        {
            var dg = new Dictionary<string, object>();
            using var merged = method.Merge(Group(d, name, ps, dg));
            outs[name] = merged.ToArray();
            if (dg.Count > 0) diag[name] = dg;
        }
        return (outs, report, diag);
    }

    /// <summary>δ the method uses on each tensor: τ₀ − τ̂₀ (exact in float32 when δ is small against τ).</summary>
    private static Dictionary<string, double[]> Deltas(ModelData d, MergeParameters ps, IEnumerable<string> names)
    {
        var method = new AwdMethod();
        Prepare(method, d, ps);
        var result = new Dictionary<string, double[]>();
        foreach (var name in names)
        {
            var g = Group(d, name, ps, []);
            var hats = method.DisentangledTaskVectors(g);
            var tau0 = d.Experts[name][0].Select((v, i) => (double)(float)(v - d.Base[name][i])).ToArray();
            result[name] = hats[0].ToArray().Select((v, i) => tau0[i] - v).ToArray();
            foreach (var h in hats) h.Dispose();
        }
        return result;
    }

    private static bool Included(string name, int[] shape, string[] exclude) => shape.Length == 2 && !exclude.Any(name.Contains);

    public static TheoryData<string, string, double, int, double> RunCases => new()
    {
        { "model", "gd", 0.01, 300, 0.1 },
        { "model", "gd", 0.05, 300, 0.01 },
        { "model", "sgd", 0.005, 300, 0.02 },
        { "model", "adam", 0.0005, 300, 0.01 },
        { "tensor", "gd", 0.02, 300, 0.02 },
        { "tensor", "adam", 0.0005, 300, 0.01 },
        { "row", "gd", 0.02, 300, 0.001 },
        { "row", "sgd", 0.002, 300, 0.001 },
        { "row", "adam", 0.0003, 300, 0.001 },
    };

    [Theory]
    [MemberData(nameof(RunCases))]
    public void Full_run_matches_an_independent_float64_reference_of_the_same_loop(string granularity, string optimizer, double lr, int iterations, double alpha)
    {
        const int k = 4;
        const double lambda = 0.4;
        string[] exclude = ["embeddings"];
        var d = MakeModel(k, 3);
        var m = new AwdMethod();
        var ps = Parameters(m, Globals(("granularity", granularity), ("optimizer", optimizer), ("lr", $"{lr}"), ("iter_num", $"{iterations}"),
            ("alpha", $"{alpha}"), ("exclude_keys", "embeddings"), ("lambda", $"{lambda}")), k);

        var included = d.Tensors.Where(t => Included(t.Name, t.Shape, exclude)).ToList();
        var tau = d.Tensors.ToDictionary(t => t.Name, t => d.Experts[t.Name].Select(x => x.Select((v, i) => (double)(float)(v - d.Base[t.Name][i])).ToArray()).ToArray());
        var refDelta = new Dictionary<string, double[]>();
        if (granularity == "model")
        {
            var flat = Enumerable.Range(0, k).Select(i => included.SelectMany(t => tau[t.Name][i]).ToArray()).ToArray();
            var delta = AwdReference.Solve(flat, AwdReference.WholeBlock(flat[0].Length), optimizer, lr, iterations, alpha);
            int offset = 0;
            foreach (var t in included)
            {
                int n = tau[t.Name][0].Length;
                refDelta[t.Name] = delta.AsSpan(offset, n).ToArray();
                offset += n;
            }
        }
        else
        {
            foreach (var t in included)
                refDelta[t.Name] = AwdReference.Solve(tau[t.Name], Blocks(granularity, t.Shape, tau[t.Name][0].Length), optimizer, lr, iterations, alpha);
        }

        var got = Deltas(d, ps, included.Select(t => t.Name));
        foreach (var t in included)
        {
            Assert.True(refDelta[t.Name].Max(Math.Abs) > 1e-4, $"{t.Name}: δ should move");
            double rel = MaxRelDiff(refDelta[t.Name], got[t.Name]);
            Assert.True(rel <= 1e-4, $"{t.Name}: δ max relative difference {rel:E2}");
        }

        var (outs, report, _) = RunAwd(d, ps);
        foreach (var (name, _) in d.Tensors)
        {
            var delta = refDelta.GetValueOrDefault(name) ?? new double[tau[name][0].Length];
            var expected = d.Base[name].Select((b, i) => b + lambda * Enumerable.Range(0, k).Sum(e => tau[name][e][i] - delta[i])).ToArray();
            double mix = expected.Select((v, i) => Math.Abs(v - d.Base[name][i])).Max();
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - outs[name][i]) <= 1e-4 * mix + 1e-6 * Math.Abs(expected[i]),
                    $"{name}[{i}]: expected {expected[i]}, got {outs[name][i]}");
        }
        Assert.Equal(granularity, report["granularity"]);
    }

    // ---------------------------------------------------------------- composition, exclusion, report

    [Fact]
    public void Ties_base_method_equals_ties_on_the_disentangled_task_vectors()
    {
        const int k = 4;
        var d = MakeModel(k, 8);
        const string name = "layers.0.mlp.fc1.weight";
        double[] weights = [1.0, 0.7, 0.5, 1.2], densities = [0.5, 0.3, 0.7, 0.4];
        var per = weights.Select((w, i) => new Dictionary<string, string> { ["weight"] = $"{w}", ["density"] = $"{densities[i]}" }).ToArray();
        var m = new AwdMethod();
        var ps = Parameters(m, Globals(("granularity", "tensor"), ("base_method", "ties"), ("lambda", "0.8"), ("lr", "0.05"), ("alpha", "0.01")), k, per);

        var hats = m.DisentangledTaskVectors(Group(d, name, ps, []));
        var hatValues = hats.Select(h => h.ToArray()).ToArray();
        foreach (var h in hats) h.Dispose();
        Assert.NotEqual(d.Experts[name][0].Select((v, i) => v - d.Base[name][i]).ToArray(), hatValues[0]);

        using var merged = new AwdMethod().Merge(Group(d, name, ps, []));
        var ties = GtaReference.Merge(new float[hatValues[0].Length], hatValues, weights, densities, "magnitude",
            consensus: true, normalize: true, rescale: false, lambda: 0.8);
        var expected = ties.Select((v, i) => d.Base[name][i] + v).ToArray();
        var got = merged.ToArray();
        for (int i = 0; i < got.Length; i++)
            Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-6 * Math.Abs(expected[i]) + 1e-7, $"[{i}]: expected {expected[i]}, got {got[i]}");
    }

    [Fact]
    public void Excluded_and_non_matrix_tensors_merge_with_delta_zero()
    {
        const int k = 3;
        var d = MakeModel(k, 4);
        var awd = new AwdMethod();
        var ps = Parameters(awd, Globals(("exclude_keys", "embeddings,mlp"), ("lambda", "0.7"), ("lr", "0.05"), ("alpha", "0.01")), k);
        var (outs, report, _) = RunAwd(d, ps, awd);
        Assert.Equal(2, report["included_tensors"]);

        var ta = new TaskArithmeticMethod();
        var taPs = Parameters(ta, Globals(("lambda", "0.7")), k);
        foreach (var (name, _) in d.Tensors)
        {
            using var expected = ta.Merge(Group(d, name, taPs, []));
            if (name.Contains("attn.q.weight")) Assert.NotEqual(expected.ToArray(), outs[name]);
            else Assert.Equal(expected.ToArray(), outs[name]);
        }
    }

    [Fact]
    public void Report_holds_losses_norm_and_cosine_matrices_before_and_after()
    {
        const int k = 4;
        var d = MakeModel(k, 6);
        var ps = Parameters(new AwdMethod(), Globals(("lr", "0.05"), ("alpha", "0.01")), k);
        var (_, report, diag) = RunAwd(d, ps);
        Assert.Empty(diag);
        Assert.Equal("model", report["granularity"]);
        Assert.Equal("gd", report["optimizer"]);
        Assert.Equal("task_arithmetic", report["base_method"]);
        Assert.Equal(5, report["included_tensors"]);
        Assert.Equal(300, report["iterations"]);
        Assert.Equal(1, report["prepare_passes_over_experts"]);
        double before = (double)report["loss_orth_before"], after = (double)report["loss_orth_after"];
        Assert.InRange(before, 0.1, 1);
        Assert.True(after < before, $"L_O {before} → {after}");
        Assert.True((double)report["loss_after"] < (double)report["loss_before"]);
        Assert.True((double)report["delta_norm"] > 0);
        Assert.Equal(k, ((double[])report["coefficients"]).Length);
        foreach (var key in new[] { "cosine_before", "cosine_after" })
        {
            var c = (double[][])report[key];
            Assert.Equal(k, c.Length);
            for (int i = 0; i < k; i++)
            {
                Assert.Equal(1.0, c[i][i], 1e-9);
                for (int j = 0; j < k; j++) Assert.Equal(c[i][j], c[j][i], 1e-12);
            }
        }
        var cb = (double[][])report["cosine_before"];
        double meanAbs = Enumerable.Range(0, k).SelectMany(i => Enumerable.Range(0, k).Where(j => j != i).Select(j => Math.Abs(cb[i][j]))).Average();
        Assert.Equal(before, meanAbs, 1e-12);

        var rowPs = Parameters(new AwdMethod(), Globals(("granularity", "row"), ("lr", "0.2"), ("alpha", "0.005")), k);
        var (_, rowReport, rowDiag) = RunAwd(d, rowPs);
        Assert.Equal(5, rowDiag.Count);
        Assert.Equal(5, rowReport["included_tensors"]);
        foreach (var (_, t) in rowDiag)
        {
            Assert.True((double)t["loss_orth_after"] < (double)t["loss_orth_before"]);
            Assert.Equal(k, ((double[][])t["cosine_after"]).Length);
        }
        Assert.True((double)rowReport["mean_loss_orth_after"] < (double)rowReport["mean_loss_orth_before"]);
    }

    [Fact]
    public void Zero_iterations_or_a_single_expert_leave_the_task_vectors_unchanged()
    {
        var d = MakeModel(3, 2);
        var ta = new TaskArithmeticMethod();
        foreach (var (granularity, optimizer) in new[] { ("model", "gd"), ("model", "adam"), ("tensor", "adam"), ("row", "sgd") })
        {
            var ps = Parameters(new AwdMethod(), Globals(("granularity", granularity), ("optimizer", optimizer), ("iter_num", "0")), 3);
            var (outs, _, _) = RunAwd(d, ps);
            var taPs = Parameters(ta, Globals(), 3);
            foreach (var (name, _) in d.Tensors)
            {
                using var expected = ta.Merge(Group(d, name, taPs, []));
                Assert.Equal(expected.ToArray(), outs[name]);
            }
        }
        var single = new ModelData(d.Tensors, d.Base, d.Experts.ToDictionary(kv => kv.Key, kv => kv.Value[..1]));
        var (one, oneReport, _) = RunAwd(single, Parameters(new AwdMethod(), Globals(), 1));
        Assert.Equal(0.0, (double)oneReport["delta_norm"]);
        foreach (var (name, _) in d.Tensors)
            Assert.Equal(single.Experts[name][0].Select((v, i) => d.Base[name][i] + (v - d.Base[name][i])).ToArray(), one[name]);
    }

    [Theory]
    [InlineData("lr", "-0.1", "lr")]
    [InlineData("iter_num", "-3", "iter_num")]
    [InlineData("alpha", "nan", "alpha")]
    [InlineData("exclude_keys", "([", "exclude_keys")]
    public void Bad_parameter_values_are_bad_input_naming_the_parameter(string key, string value, string expected)
    {
        var d = MakeModel(2, 1);
        var e = Assert.Throws<BadInputException>(() => Prepare(new AwdMethod(), d, Parameters(new AwdMethod(), Globals((key, value)), 2)));
        Assert.Contains(expected, e.Message);
    }

    // ---------------------------------------------------------------- CLI end to end

    [Fact]
    public void Example_config_merges_through_the_cli_and_matches_the_float64_reference()
    {
        string outDir = TestPaths.NewTempDir();
        var (code, stdout, stderr) = CliRunner.Run("merge", Path.Combine(TestPaths.Examples, "awd.yml"), outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "merge_report.json")))!;
        Assert.Equal("awd", (string?)report["method"]);
        var mr = report["method_report"]!;
        Assert.Equal("model", (string?)mr["granularity"]);
        Assert.True((double)mr["loss_after"]! < (double)mr["loss_before"]!);
        Assert.Equal(4, mr["cosine_after"]!.AsArray().Count);

        string zoo = Path.Combine(TestPaths.Examples, "zoo");
        using var merged = ModelSource.Open(outDir);
        using var baseM = ModelSource.Open(Path.Combine(zoo, "base"));
        var experts = Enumerable.Range(0, 4).Select(i => ModelSource.Open(Path.Combine(zoo, $"expert_{i}"))).ToArray();
        try
        {
            Assert.Equal(baseM.Tensors.Select(t => t.Name), merged.Tensors.Select(t => t.Name));
            var floats = baseM.Tensors.Where(t => t.DType.IsFloat()).ToList();
            string[] exclude = ["embeddings", "visual_projection"];
            var included = floats.Where(t => t.Rank == 2 && !exclude.Any(t.Name.Contains)).ToList();
            Assert.Equal(included.Count, (int)mr["included_tensors"]!);
            var tau = floats.ToDictionary(t => t.Name, t =>
            {
                var b = baseM.ReadFloat32(t.Name);
                return experts.Select(e => e.ReadFloat32(t.Name).Select((v, i) => (double)(v - b[i])).ToArray()).ToArray();
            });
            var flat = Enumerable.Range(0, 4).Select(i => included.SelectMany(t => tau[t.Name][i]).ToArray()).ToArray();
            var delta = AwdReference.Solve(flat, AwdReference.WholeBlock(flat[0].Length), "gd", 0.01, 300, 0.1);
            var coefficients = mr["coefficients"]!.AsArray().Select(x => (double)x!).ToArray();
            double refNorm = Math.Sqrt(delta.Sum(x => x * x));
            Assert.Equal(refNorm, (double)mr["delta_norm"]!, refNorm * 1e-4);

            int offset = 0;
            foreach (var t in floats)
            {
                var b = baseM.ReadFloat32(t.Name);
                bool inc = included.Contains(t);
                var expected = b.Select((bv, i) => bv + 0.4 * Enumerable.Range(0, 4).Sum(e => tau[t.Name][e][i] - (inc ? delta[offset + i] : 0))).ToArray();
                if (inc) offset += b.Length;
                var got = merged.ReadFloat32(t.Name);
                double mix = expected.Select((v, i) => Math.Abs(v - b[i])).Max();
                for (int i = 0; i < got.Length; i++)
                    Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-4 * mix + 1e-6 * Math.Abs(expected[i]), $"{t.Name}[{i}]: expected {expected[i]}, got {got[i]}");
            }
            Assert.Equal(4, coefficients.Length);
        }
        finally
        {
            foreach (var e in experts) e.Dispose();
        }
    }
}
