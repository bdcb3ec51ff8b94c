using System.Text.Json.Nodes;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.Cli;

namespace TaskMerge.Engine.Tests.Methods;

public class WudiTests
{
    private static readonly CpuBackend Cpu = new(2);
    private const string Fc1 = "vision_model.encoder.layers.0.mlp.fc1.weight";

    private static double Normal(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    private static double[] LowRank(Random r, int rows, int cols, int rank)
    {
        var m = new double[rows * cols];
        for (int k = 0; k < rank; k++)
        {
            var u = Enumerable.Range(0, rows).Select(_ => Normal(r)).ToArray();
            var w = Enumerable.Range(0, cols).Select(_ => Normal(r)).ToArray();
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) m[i * cols + j] += u[i] * w[j] / Math.Sqrt(rank);
        }
        return m;
    }

    private static float[] BaseValues(Random r, int n) => Enumerable.Range(0, n).Select(_ => (float)(0.02 * Normal(r))).ToArray();

    /// <summary>
    /// Experts like fine-tuning deltas at scale ~1e-3 (where Adam's eps matters): a private rank-2
    /// part, a part every task shares (the interference WUDI removes), and noise.
    /// </summary>
    private static float[][] Experts(Random r, float[] baseV, int count, int rows, int cols, double scale = 1e-3)
    {
        var shared = LowRank(r, rows, cols, 1);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var own = LowRank(r, rows, cols, 2);
            return baseV.Select((b, i) => (float)(b + scale * (own[i] + 0.5 * shared[i] + 0.2 * Normal(r)))).ToArray();
        }).ToArray();
    }

    /// <summary>τᵢ exactly as the engine forms them (a float32 subtraction), widened to float64.</summary>
    private static double[][] TaskVectors(float[] baseV, float[][] experts) =>
        experts.Select(e => e.Select((v, i) => (double)(v - baseV[i])).ToArray()).ToArray();

    private static Dictionary<string, ParameterSetting> P(params (string Key, string Value)[] kv) =>
        kv.ToDictionary(x => x.Key, x => (ParameterSetting)new ScalarSetting(x.Value));

    private static MergeParameters Parameters(IMergeMethod method, Dictionary<string, ParameterSetting>? globals, int experts)
    {
        var warnings = new List<string>();
        var ps = new MergeParameters(method.Parameters, globals ?? [],
            Enumerable.Range(0, experts).Select(_ => (IReadOnlyDictionary<string, ParameterSetting>)new Dictionary<string, ParameterSetting>()).ToList(),
            warnings);
        Assert.Empty(warnings);
        return ps;
    }

    private static (float[] Merged, Dictionary<string, object> Diagnostics) Merge(float[] baseV, float[][] experts, int[] shape,
        Dictionary<string, ParameterSetting>? parameters = null, string name = Fc1, IMergeMethod? method = null)
    {
        method ??= new WudiMethod();
        var diagnostics = new Dictionary<string, object>();
        using var result = method.Merge(new TensorGroup
        {
            Name = name, Depth = 0, Base = Cpu.Wrap((float[])baseV.Clone(), shape),
            Experts = experts.Select((e, i) => new ExpertTensor(i, Cpu.Wrap((float[])e.Clone(), shape))).ToList(),
            Backend = Cpu, Parameters = Parameters(method, parameters, experts.Length), Diagnostics = diagnostics,
        });
        return (result.ToArray(), diagnostics);
    }

    /// <summary>τ_m = θ − θ₀, widened.</summary>
    private static double[] MergedTaskVector(float[] merged, float[] baseV) => merged.Select((v, i) => (double)v - baseV[i]).ToArray();

    private static double RelativeError(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            num += (expected[i] - actual[i]) * (expected[i] - actual[i]);
            den += expected[i] * expected[i];
        }
        return Math.Sqrt(num / den);
    }

    private static WudiGram Gram(double[][] taus, int[] rows, int cols) =>
        WudiGram.Build(Cpu, rows, cols, Enumerable.Range(0, taus.Length).ToArray(), i =>
        {
            var blocks = new Tensor[rows.Length];
            int offset = 0;
            for (int b = 0; b < rows.Length; b++)
            {
                blocks[b] = Cpu.Wrap(taus[i].Skip(offset).Take(rows[b] * cols).Select(x => (float)x).ToArray(), rows[b], cols);
                offset += rows[b] * cols;
            }
            return blocks;
        }, withLossConstant: true, "test");

    [Theory]
    [InlineData(24, 16)]
    [InlineData(16, 40)]
    public void Gram_form_gradient_and_loss_match_float64_backprop_through_the_official_loss(int rows, int cols)
    {
        var r = new Random(rows * 100 + cols);
        var baseV = BaseValues(r, rows * cols);
        var taus = TaskVectors(baseV, Experts(r, baseV, 3, rows, cols));
        var m = new double[rows * cols];
        foreach (var t in taus) for (int i = 0; i < m.Length; i++) m[i] += t[i];
        var mf = m.Select(x => (float)(x + 1e-3 * Normal(r))).ToArray();
        var md = mf.Select(x => (double)x).ToArray();

        var expected = new double[m.Length];
        double expectedLoss = WudiReference.LossAndGradient(md, taus, rows, cols, expected);
        // The reference's hand-written backward pass against central differences of its own loss.
        double gmax = expected.Max(Math.Abs);
        foreach (int i in new[] { 0, 7, m.Length / 2, m.Length - 1 })
        {
            const double h = 1e-6;
            var plus = (double[])md.Clone();
            var minus = (double[])md.Clone();
            plus[i] += h;
            minus[i] -= h;
            double fd = (WudiReference.Loss(plus, taus, rows, cols) - WudiReference.Loss(minus, taus, rows, cols)) / (2 * h);
            Assert.True(Math.Abs(fd - expected[i]) <= 1e-6 * gmax, $"finite difference {fd} vs backprop {expected[i]} at {i}");
        }

        using var gram = Gram(taus, [rows], cols);
        using var mt = Cpu.Wrap(mf, rows, cols);
        using var g = Cpu.Empty(rows, cols);
        gram.Gradient([mt], [g]);
        Assert.True(RelativeError(expected, g.ToArray().Select(x => (double)x).ToArray()) <= 1e-5);
        double loss = gram.Loss([mt], [g]);
        Assert.True(Math.Abs(loss - expectedLoss) <= 1e-5 * expectedLoss, $"Gram-form loss {loss} vs brute force {expectedLoss}");
        Assert.Equal(3, gram.TasksUsed);
    }

    [Fact]
    public void Row_blocks_of_one_matrix_give_the_gradient_of_the_stacked_matrix()
    {
        int[] rows = [8, 4, 4];
        const int cols = 12;
        var r = new Random(17);
        var baseV = BaseValues(r, 16 * cols);
        var taus = TaskVectors(baseV, Experts(r, baseV, 3, 16, cols));
        var m = Enumerable.Range(0, 16 * cols).Select(i => (float)(taus.Sum(t => t[i]) + 1e-3 * Normal(r))).ToArray();
        var expected = new double[m.Length];
        WudiReference.LossAndGradient(m.Select(x => (double)x).ToArray(), taus, 16, cols, expected);

        using var gram = Gram(taus, rows, cols);
        var mb = new[] { Cpu.Wrap(m[..96], 8, cols), Cpu.Wrap(m[96..144], 4, cols), Cpu.Wrap(m[144..], 4, cols) };
        var gb = rows.Select(n => Cpu.Empty(n, cols)).ToArray();
        gram.Gradient(mb, gb);
        var got = gb.SelectMany(t => t.ToArray()).Select(x => (double)x).ToArray();
        Assert.True(RelativeError(expected, got) <= 1e-5);
    }

    [Fact]
    public void Zero_iterations_equal_task_arithmetic_with_lambda_one_bit_for_bit()
    {
        var r = new Random(3);
        var baseV = BaseValues(r, 24 * 16);
        var experts = Experts(r, baseV, 3, 24, 16);
        var (ta, _) = Merge(baseV, experts, [24, 16], method: new TaskArithmeticMethod());
        Assert.Equal(ta, Merge(baseV, experts, [24, 16], P(("iter_num", "0"))).Merged);
        // Also through the Gram path (log_loss forces it).
        Assert.Equal(ta, Merge(baseV, experts, [24, 16], P(("iter_num", "0"), ("log_loss", "true"))).Merged);
    }

    [Theory]
    [InlineData(24, 16)]
    [InlineData(16, 40)]
    public void A_single_task_is_a_fixed_point(int rows, int cols)
    {
        var r = new Random(5);
        var baseV = BaseValues(r, rows * cols);
        var experts = Experts(r, baseV, 1, rows, cols);
        var taus = TaskVectors(baseV, experts);
        using var gram = Gram(taus, [rows], cols);
        using var m = Cpu.Wrap(taus[0].Select(x => (float)x).ToArray(), rows, cols);
        using var g = Cpu.Empty(rows, cols);
        gram.Gradient([m], [g]);
        Assert.All(g.ToArray(), x => Assert.Equal(0f, x));

        var (ta, _) = Merge(baseV, experts, [rows, cols], method: new TaskArithmeticMethod());
        Assert.Equal(ta, Merge(baseV, experts, [rows, cols]).Merged);
    }

    [Theory]
    [InlineData(24, 16, 3)]
    [InlineData(16, 40, 3)]
    [InlineData(32, 32, 8)]
    public void Full_300_step_run_matches_a_float64_restatement_of_the_official_loop(int rows, int cols, int count)
    {
        var r = new Random(rows + cols + count);
        var baseV = BaseValues(r, rows * cols);
        var experts = Experts(r, baseV, count, rows, cols);
        var taus = TaskVectors(baseV, experts);
        var expected = WudiReference.OfficialLoop(taus, rows, cols, 300, 1e-5);
        var got = MergedTaskVector(Merge(baseV, experts, [rows, cols]).Merged, baseV);
        Assert.True(RelativeError(expected, got) <= 1e-4, $"relative error {RelativeError(expected, got):E2}");

        // The optimiser's own contribution (τ_m − Σ τᵢ) must match too, not only the dominant Σ τᵢ.
        var sum = Enumerable.Range(0, rows * cols).Select(i => taus.Sum(t => t[i])).ToArray();
        var moved = expected.Select((v, i) => v - sum[i]).ToArray();
        var gotMoved = got.Select((v, i) => v - sum[i]).ToArray();
        Assert.True(RelativeError(moved, gotMoved) <= 1e-4, $"relative error of the Adam displacement {RelativeError(moved, gotMoved):E2}");
    }

    [Theory]
    [InlineData(24, 16, 1e-2)]
    [InlineData(16, 40, 1e-2)]
    [InlineData(24, 16, 1e-4)]
    public void Closed_form_solves_the_ridge_regularised_normal_equations(int rows, int cols, double ridge)
    {
        var r = new Random(7);
        var baseV = BaseValues(r, rows * cols);
        var experts = Experts(r, baseV, 3, rows, cols);
        var taus = TaskVectors(baseV, experts);
        var (merged, diagnostics) = Merge(baseV, experts, [rows, cols],
            P(("solver", "closed_form"), ("ridge", ridge.ToString("R")), ("log_loss", "true")));
        double rho = ridge * 3 / cols;
        Assert.Equal(rho, (double)diagnostics["ridge_rho"], 12);
        var expected = WudiReference.ClosedForm(taus, rows, cols, rho);
        var got = MergedTaskVector(merged, baseV);
        Assert.True(RelativeError(expected, got) <= 1e-4, $"relative error {RelativeError(expected, got):E2}");
        Assert.True((double)diagnostics["loss_final"] < (double)diagnostics["loss_initial"]);
    }

    [Fact]
    public void Closed_form_with_a_singular_c_and_no_ridge_is_bad_input_naming_the_tensor()
    {
        var r = new Random(8);
        var baseV = new float[8 * 6];
        var experts = Experts(r, baseV, 2, 8, 6);
        foreach (var e in experts) for (int i = 0; i < 8; i++) e[i * 6 + 5] = 0f;
        var ex = Assert.Throws<BadInputException>(() => Merge(baseV, experts, [8, 6], P(("solver", "closed_form"), ("ridge", "0"))));
        Assert.Contains(Fc1, ex.Message);
        Assert.Contains("ridge", ex.Message);
    }

    [Theory]
    [InlineData(new[] { 40 })]
    [InlineData(new[] { 2, 3, 2, 2 })]
    public void Non_matrix_tensors_get_the_mean_task_vector_or_the_base(int[] shape)
    {
        int n = shape.Aggregate(1, (a, b) => a * b);
        var r = new Random(9);
        var baseV = BaseValues(r, n);
        var experts = Enumerable.Range(0, 3).Select(_ => baseV.Select(b => (float)(b + 1e-3 * Normal(r))).ToArray()).ToArray();
        var taus = TaskVectors(baseV, experts);
        var expected = baseV.Select((b, i) => b + taus.Average(t => t[i])).ToArray();
        var (mean, _) = Merge(baseV, experts, shape, name: "vision_model.encoder.layers.0.layer_norm1.weight");
        Assert.True(RelativeError(expected, mean.Select(x => (double)x).ToArray()) <= 1e-7);
        var (kept, _) = Merge(baseV, experts, shape, P(("non_matrix", "base")), "vision_model.encoder.layers.0.layer_norm1.weight");
        Assert.Equal(baseV, kept);
    }

    [Fact]
    public void Exclude_keys_regexes_send_matching_matrices_to_non_matrix()
    {
        var r = new Random(10);
        var baseV = BaseValues(r, 12 * 8);
        var experts = Experts(r, baseV, 3, 12, 8);
        var exclude = new Dictionary<string, ParameterSetting>
        {
            ["exclude_keys"] = new StringListSetting([@"\.embeddings\.", "^visual_projection"]),
            ["non_matrix"] = new ScalarSetting("base"),
        };
        Assert.Equal(baseV, Merge(baseV, experts, [12, 8], exclude, "vision_model.embeddings.position_embedding.weight").Merged);
        Assert.Equal(baseV, Merge(baseV, experts, [12, 8], exclude, "visual_projection.weight").Merged);
        var wudi = Merge(baseV, experts, [12, 8]).Merged;
        Assert.Equal(wudi, Merge(baseV, experts, [12, 8], exclude).Merged);
        Assert.NotEqual(baseV, wudi);

        var mean = Merge(baseV, experts, [12, 8], P(("exclude_keys", "fc1"))).Merged;
        var taus = TaskVectors(baseV, experts);
        Assert.True(RelativeError(baseV.Select((b, i) => b + taus.Average(t => t[i])).ToArray(), mean.Select(x => (double)x).ToArray()) <= 1e-7);
    }

    [Fact]
    public void An_invalid_exclude_regex_is_bad_input_naming_the_pattern()
    {
        var ex = Assert.Throws<BadInputException>(() => Merge([0f, 0f, 0f, 0f], [[1f, 0f, 0f, 1f]], [2, 2], P(("exclude_keys", "(unclosed"))));
        Assert.Contains("(unclosed", ex.Message);
    }

    [Fact]
    public void Invalid_settings_are_bad_input_naming_the_parameter()
    {
        // Out of its declared range [0, 10⁶], so refused when the parameters are resolved, before any tensor.
        var ex = Assert.Throws<BadInputException>(() => Merge([0f, 0f, 0f, 0f], [[1f, 0f, 0f, 1f]], [2, 2], P(("iter_num", "-1"))));
        Assert.Contains("'iter_num'", ex.Message);
        Assert.Contains("[0, 1000000]", ex.Message);
    }

    [Fact]
    public void Zero_task_vectors_are_left_out_and_reported()
    {
        var r = new Random(11);
        var baseV = BaseValues(r, 24 * 16);
        var experts = Experts(r, baseV, 2, 24, 16);
        var withZero = new[] { experts[0], (float[])baseV.Clone(), experts[1] };
        var (merged, diagnostics) = Merge(baseV, withZero, [24, 16]);
        Assert.Equal(Merge(baseV, experts, [24, 16]).Merged, merged);
        Assert.Equal([1], (int[])diagnostics["zero_task_vectors"]);
        Assert.All(merged, x => Assert.True(float.IsFinite(x)));
    }

    [Theory]
    [InlineData("adam")]
    [InlineData("closed_form")]
    public void All_zero_task_vectors_leave_the_base(string solver)
    {
        var r = new Random(12);
        var baseV = BaseValues(r, 6 * 4);
        var (merged, diagnostics) = Merge(baseV, [(float[])baseV.Clone(), (float[])baseV.Clone()], [6, 4], P(("solver", solver)));
        Assert.Equal(baseV, merged);
        Assert.Equal([0, 1], (int[])diagnostics["zero_task_vectors"]);
    }

    [Fact]
    public void Logged_loss_decreases_and_matches_the_brute_force_loss()
    {
        const int rows = 16, cols = 40;
        var r = new Random(13);
        var baseV = BaseValues(r, rows * cols);
        var experts = Experts(r, baseV, 3, rows, cols);
        var taus = TaskVectors(baseV, experts);
        var expected = new List<double>();
        WudiReference.OfficialLoop(taus, rows, cols, 120, 1e-5, expected);
        var (merged, diagnostics) = Merge(baseV, experts, [rows, cols], P(("iter_num", "120"), ("log_loss", "true"), ("log_every", "7")));
        var steps = (List<int>)diagnostics["loss_steps"];
        var loss = (List<double>)diagnostics["loss"];
        Assert.Equal(Enumerable.Range(0, 18).Select(i => 7 * i).Append(120), steps);
        for (int k = 0; k < steps.Count - 1; k++)
            Assert.True(Math.Abs(loss[k] - expected[steps[k]]) <= 1e-4 * expected[steps[k]], $"step {steps[k]}: {loss[k]} vs {expected[steps[k]]}");
        double final = WudiReference.Loss(MergedTaskVector(merged, baseV), taus, rows, cols);
        Assert.True(Math.Abs(loss[^1] - final) <= 1e-4 * final, $"final loss {loss[^1]} vs brute force {final}");
        Assert.True(loss[^1] < 0.9 * loss[0]);
        for (int k = 1; k < loss.Count; k++) Assert.True(loss[k] < loss[k - 1], $"loss rose at step {steps[k]}");
    }

    [Fact]
    public void Fuse_qkv_matches_the_official_loop_on_the_stacked_in_proj_matrix()
    {
        const int cols = 12, count = 3;
        const string prefix = "vision_model.encoder.layers.0.self_attn.";
        string[] qkv = [prefix + "q_proj.weight", prefix + "k_proj.weight", prefix + "v_proj.weight"];
        int[] rows = [8, 4, 4];
        var r = new Random(14);
        var baseV = BaseValues(r, 16 * cols);
        var experts = Experts(r, baseV, count, 16, cols);
        var values = new Dictionary<(string, int), float[]>();
        int offset = 0;
        for (int b = 0; b < 3; b++)
        {
            values[(qkv[b], -1)] = baseV[offset..(offset + rows[b] * cols)];
            for (int e = 0; e < count; e++) values[(qkv[b], e)] = experts[e][offset..(offset + rows[b] * cols)];
            offset += rows[b] * cols;
        }
        const string other = "vision_model.encoder.layers.0.mlp.fc1.weight";
        values[(other, -1)] = baseV[..(8 * cols)];
        for (int e = 0; e < count; e++) values[(other, e)] = experts[e][..(8 * cols)];
        var shapes = qkv.Select((n, b) => (n, new[] { rows[b], cols })).Append((other, new[] { 8, cols })).ToList();

        float[] Run(bool fuse, string name)
        {
            var method = new WudiMethod();
            var ps = Parameters(method, P(("fuse_qkv", fuse ? "true" : "false"), ("iter_num", "200"), ("log_loss", "true")), count);
            var report = new Dictionary<string, object>();
            var prepared = new PreparedTensors();
            method.Prepare(new MergeContext
            {
                Tensors = shapes, ExpertCount = count, Backend = Cpu, Parameters = ps, Report = report, Prepared = prepared,
                Load = (n, m) => Cpu.Wrap((float[])values[(n, m)].Clone(), shapes.Single(s => s.Item1 == n).Item2),
            });
            if (fuse) Assert.Equal(1, report["fused_qkv_triples"]);
            var shape = shapes.Single(s => s.Item1 == name).Item2;
            var diagnostics = new Dictionary<string, object>();
            using var t = method.Merge(new TensorGroup
            {
                Name = name, Depth = 0, Base = Cpu.Wrap((float[])values[(name, -1)].Clone(), shape),
                Experts = Enumerable.Range(0, count).Select(e => new ExpertTensor(e, Cpu.Wrap((float[])values[(name, e)].Clone(), shape))).ToList(),
                Backend = Cpu, Parameters = ps, Diagnostics = diagnostics, Prepared = prepared,
            });
            if (fuse && name != other) Assert.Equal(qkv, (string[])diagnostics["fused_qkv"]);
            return t.ToArray();
        }

        var fused = qkv.SelectMany(n => Run(true, n)).ToArray();
        var taus = TaskVectors(baseV, experts);
        var expected = WudiReference.OfficialLoop(taus, 16, cols, 200, 1e-5);
        Assert.True(RelativeError(expected, MergedTaskVector(fused, baseV)) <= 1e-4);

        var separate = qkv.SelectMany(n => Run(false, n)).ToArray();
        Assert.True(RelativeError(expected, MergedTaskVector(separate, baseV)) > 1e-2, "fusing should change the objective");
        Assert.Equal(Run(false, other), Run(true, other));
    }

    [Fact]
    public void Wudi_example_config_merges_the_zoo_and_matches_the_reference()
    {
        string outDir = TestPaths.NewTempDir();
        var (code, stdout, stderr) = CliRunner.Run("merge", Path.Combine(TestPaths.Examples, "wudi.yml"), outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        using var merged = ModelSource.Open(outDir);
        Assert.Equal(41, merged.Tensors.Count);
        using var baseM = ModelSource.Open(Path.Combine(TestPaths.Examples, "zoo/base"));
        var experts = Enumerable.Range(0, 4).Select(i => ModelSource.Open(Path.Combine(TestPaths.Examples, $"zoo/expert_{i}"))).ToArray();
        try
        {
            const string outProj = "vision_model.encoder.layers.1.self_attn.out_proj.weight";
            var b = baseM.ReadFloat32(outProj);
            var taus = TaskVectors(b, experts.Select(e => e.ReadFloat32(outProj)).ToArray());
            var expected = WudiReference.OfficialLoop(taus, 64, 64, 50, 1e-5);
            Assert.True(RelativeError(expected, MergedTaskVector(merged.ReadFloat32(outProj), b)) <= 1e-4);

            const string bias = "vision_model.encoder.layers.0.mlp.fc1.bias";
            var bb = baseM.ReadFloat32(bias);
            var biasTaus = TaskVectors(bb, experts.Select(e => e.ReadFloat32(bias)).ToArray());
            Assert.True(RelativeError(bb.Select((v, i) => v + biasTaus.Average(t => t[i])).ToArray(),
                merged.ReadFloat32(bias).Select(x => (double)x).ToArray()) <= 1e-7);
        }
        finally
        {
            foreach (var e in experts) e.Dispose();
        }

        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "merge_report.json")))!;
        Assert.Equal("wudi", (string?)report["method"]);
        Assert.Equal(50, (int)report["parameters"]!["iter_num"]!);
        var loss = report["tensor_diagnostics"]!["vision_model.encoder.layers.0.mlp.fc2.weight"]!["loss"]!.AsArray().Select(x => (double)x!).ToArray();
        Assert.Equal(6, loss.Length);
        Assert.True(loss[^1] < loss[0]);
    }
}
