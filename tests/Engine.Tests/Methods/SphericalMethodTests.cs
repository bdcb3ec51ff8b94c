using TaskMerge.Engine.Config;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using static TaskMerge.Engine.Tests.Methods.SphericalReference;

namespace TaskMerge.Engine.Tests.Methods;

public class SphericalMethodTests
{
    private static readonly CpuBackend Cpu = new(2);

    private static float[] Random(int seed, int n, double scale = 1) =>
        Enumerable.Range(0, n).Select(_ => 0).Select((_, i) => (float)((new Random(seed * 7919 + i).NextDouble() - 0.5) * scale)).ToArray();

    private static float[] Merge(IMergeMethod method, float[]? baseV, float[][] experts, Dictionary<string, string> globals,
        Dictionary<string, string>[]? perModel = null, int[]? shape = null)
    {
        shape ??= [(baseV ?? experts[0]).Length];
        perModel ??= experts.Select(_ => new Dictionary<string, string>()).ToArray();
        var warnings = new List<string>();
        var ps = new MergeParameters(method.Parameters,
            globals.ToDictionary(kv => kv.Key, kv => (ParameterSetting)new ScalarSetting(kv.Value)),
            perModel.Select(d => (IReadOnlyDictionary<string, ParameterSetting>)d.ToDictionary(kv => kv.Key, kv => (ParameterSetting)new ScalarSetting(kv.Value))).ToList(),
            warnings);
        Assert.Empty(warnings);
        using var result = method.Merge(new TensorGroup
        {
            Name = "model.layers.0.mlp.up_proj.weight", Depth = 0, Base = baseV is null ? null : Cpu.Wrap((float[])baseV.Clone(), shape),
            Experts = experts.Select((e, i) => new ExpertTensor(i, Cpu.Wrap((float[])e.Clone(), shape))).ToList(),
            Backend = Cpu, Parameters = ps, Diagnostics = new Dictionary<string, object>(),
        });
        return result.ToArray();
    }

    private static Dictionary<string, string>[] Weights(params double[] w) =>
        w.Select(v => new Dictionary<string, string> { ["weight"] = v.ToString("R", System.Globalization.CultureInfo.InvariantCulture) }).ToArray();

    private static string F(double v) => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);

    // ---- slerp ----

    [Theory]
    [InlineData(1, 0.3, 200)]
    [InlineData(2, 0.5, 1000)]
    [InlineData(3, 0.9, 37)]
    [InlineData(4, -0.25, 64)]
    [InlineData(5, 1.4, 64)]
    public void Slerp_matches_float64_mergekit_formula(int seed, double t, int n)
    {
        var a = Random(seed, n);
        var b = a.Select((x, i) => x * 0.6f + Random(seed + 100, n)[i]).ToArray();
        var merged = Merge(new SlerpMethod(), a, [b], new() { ["t"] = F(t) });
        MethodParityTests.AssertClose(Slerp(t, ToDouble(a), ToDouble(b)), merged, 2e-6);
    }

    [Fact]
    public void Slerp_at_t_0_is_the_base_and_at_t_1_the_other_model_bit_for_bit()
    {
        var a = Random(11, 300);
        var b = Random(12, 300, 3);
        Assert.Equal(a, Merge(new SlerpMethod(), a, [b], new() { ["t"] = "0" }));
        Assert.Equal(b, Merge(new SlerpMethod(), a, [b], new() { ["t"] = "1" }));
    }

    [Theory]
    [InlineData(2.0)]
    [InlineData(-3.0)]
    public void Slerp_of_colinear_or_antipodal_tensors_is_linear(double factor)
    {
        var a = Random(21, 50);
        var b = a.Select(x => (float)(x * factor)).ToArray();
        var merged = Merge(new SlerpMethod(), a, [b], new() { ["t"] = "0.3" });
        MethodParityTests.AssertClose(a.Select((x, i) => 0.7 * x + 0.3 * b[i]).ToArray(), merged, 1e-6);
    }

    [Fact]
    public void Slerp_just_inside_the_colinear_threshold_is_spherical()
    {
        // cos θ = 0.999 < 0.9995: the spherical weights differ from the linear ones.
        double cos = 0.999, sin = Math.Sqrt(1 - cos * cos);
        float[] a = [1, 0], b = [(float)cos, (float)sin];
        var merged = Merge(new SlerpMethod(), a, [b], new() { ["t"] = "0.5" });
        double half = Math.Acos(cos) / 2;
        Assert.Equal(Math.Cos(half), merged[0], 5e-7);
        Assert.Equal(Math.Sin(half), merged[1], 5e-7);
    }

    [Fact]
    public void Slerp_with_a_zero_tensor_takes_the_right_angle_weights()
    {
        var zero = new float[40];
        var b = Random(31, 40);
        var merged = Merge(new SlerpMethod(), zero, [b], new() { ["t"] = "0.25" });
        MethodParityTests.AssertClose(Slerp(0.25, ToDouble(zero), ToDouble(b)), merged, 1e-6);
        MethodParityTests.AssertClose(b.Select(x => Math.Sin(Math.PI / 8) * x).ToArray(), merged, 1e-6);
    }

    [Fact]
    public void Slerp_refuses_more_than_one_model_besides_the_base()
    {
        var a = Random(41, 10);
        var e = Assert.Throws<BadInputException>(() => Merge(new SlerpMethod(), a, [a, a], new() { ["t"] = "0.5" }));
        Assert.Contains("exactly two models", e.Message);
    }

    [Fact]
    public void Slerp_without_t_is_bad_input_naming_the_parameter()
    {
        var a = Random(42, 10);
        var e = Assert.Throws<BadInputException>(() => Merge(new SlerpMethod(), a, [a], new()));
        Assert.Contains("'t'", e.Message);
    }

    // ---- nuslerp ----

    public static TheoryData<int[], bool, bool, bool> NuSlerpCases => new()
    {
        { [120], true, false, false }, { [12, 10], true, false, false }, { [12, 10], false, false, false },
        { [12, 10], false, true, false }, { [4, 3, 5], false, true, true }, { [4, 3, 5], false, false, true },
        { [6, 9], true, false, true }, { [6, 9], false, true, true },
    };

    [Theory]
    [MemberData(nameof(NuSlerpCases))]
    public void NuSlerp_matches_float64_mergekit_formula(int[] shape, bool flatten, bool rowWise, bool withBase)
    {
        int n = shape.Aggregate(1, (p, d) => p * d);
        var baseV = Random(51, n);
        var a = baseV.Select((x, i) => x + Random(52, n, 0.2)[i]).ToArray();
        var b = baseV.Select((x, i) => x + Random(53, n, 0.2)[i] + 0.5f * Random(52, n, 0.2)[i]).ToArray();
        var globals = new Dictionary<string, string> { ["nuslerp_flatten"] = flatten ? "true" : "false", ["nuslerp_row_wise"] = rowWise ? "true" : "false" };
        var merged = Merge(new NuSlerpMethod(), withBase ? baseV : null, [a, b], globals, Weights(0.7, 0.3), shape);
        var expected = NuSlerp(withBase ? ToDouble(baseV) : null, ToDouble(a), ToDouble(b), 0.7, 0.3, shape, flatten, rowWise);
        MethodParityTests.AssertClose(expected, merged, 3e-6);
    }

    [Fact]
    public void NuSlerp_with_weights_summing_to_zero_uses_t_one_half_and_a_zero_second_weight_gives_the_first_model()
    {
        var a = Random(61, 30);
        var b = Random(62, 30);
        MethodParityTests.AssertClose(NuSlerp(null, ToDouble(a), ToDouble(b), 1, -1, [30], true, false),
            Merge(new NuSlerpMethod(), null, [a, b], new(), Weights(1, -1)), 2e-6);
        Assert.Equal(a, Merge(new NuSlerpMethod(), null, [a, b], new(), Weights(2, 0)));
    }

    [Theory]
    [InlineData(2.0)]
    [InlineData(-1.0)]
    public void NuSlerp_rows_that_are_colinear_or_antipodal_are_linear(double factor)
    {
        // Row 0 colinear/antipodal, row 1 general: only row 0 falls back to lerp.
        float[] a = [1, 2, 3, 1, 0, 0];
        float[] b = [(float)factor, (float)(2 * factor), (float)(3 * factor), 0, 1, 0];
        var merged = Merge(new NuSlerpMethod(), null, [a, b], new() { ["nuslerp_flatten"] = "false" }, Weights(0.75, 0.25), [2, 3]);
        for (int i = 0; i < 3; i++) Assert.Equal(0.75 * a[i] + 0.25 * b[i], merged[i], 6);
        Assert.Equal(Math.Cos(Math.PI / 8), merged[3], 6);
        Assert.Equal(Math.Sin(Math.PI / 8), merged[4], 6);
    }

    [Fact]
    public void NuSlerp_of_a_zero_task_vector_uses_the_right_angle_weights()
    {
        var baseV = Random(71, 20);
        var b = baseV.Select((x, i) => x + Random(72, 20)[i]).ToArray();
        var merged = Merge(new NuSlerpMethod(), baseV, [(float[])baseV.Clone(), b], new(), Weights(0.5, 0.5));
        MethodParityTests.AssertClose(NuSlerp(ToDouble(baseV), ToDouble(baseV), ToDouble(b), 0.5, 0.5, [20], true, false), merged, 2e-6);
    }

    [Fact]
    public void NuSlerp_needs_exactly_two_models_besides_the_base()
    {
        var a = Random(81, 10);
        var e = Assert.Throws<BadInputException>(() => Merge(new NuSlerpMethod(), a, [a, a, a], new(), Weights(1, 1, 1)));
        Assert.Contains("exactly two models", e.Message);
    }

    // ---- multislerp ----

    [Theory]
    [InlineData(3, false, true)]
    [InlineData(3, true, true)]
    [InlineData(4, true, false)]
    [InlineData(2, false, true)]
    public void MultiSlerp_matches_float64_tangent_space_formula(int models, bool withBase, bool normalizeWeights)
    {
        int n = 150;
        var baseV = Random(91, n);
        var xs = Enumerable.Range(0, models).Select(k => baseV.Select((x, i) => x + Random(92 + k, n, 0.3 + 0.1 * k)[i]).ToArray()).ToArray();
        double[] w = [.. Enumerable.Range(0, models).Select(k => 0.2 + 0.3 * k)];
        var merged = Merge(new MultiSlerpMethod(), withBase ? baseV : null, xs, new() { ["normalize_weights"] = normalizeWeights ? "true" : "false" },
            Weights(w), [n]);
        var expected = MultiSlerp(withBase ? ToDouble(baseV) : null, xs.Select(ToDouble).ToArray(), w, normalizeWeights);
        MethodParityTests.AssertClose(expected, merged, 3e-6);
    }

    [Fact]
    public void MultiSlerp_of_two_antipodal_models_with_equal_weights_falls_back_to_linear()
    {
        var a = Random(101, 25);
        var b = a.Select(x => -x).ToArray();
        var merged = Merge(new MultiSlerpMethod(), null, [a, b], new(), Weights(1, 1));
        Assert.All(merged, v => Assert.Equal(0, v, 6));
        var three = Assert.Throws<BadInputException>(() => Merge(new MultiSlerpMethod(), null, [a, b, a.Select(_ => 0f).ToArray()], new(), Weights(1, 1, 1)));
        Assert.Contains("weighted mean", three.Message);
    }

    [Fact]
    public void MultiSlerp_of_colinear_models_keeps_their_direction_at_the_weighted_norm()
    {
        var a = Random(111, 25);
        var b = a.Select(x => 3 * x).ToArray();
        var merged = Merge(new MultiSlerpMethod(), null, [a, b], new(), Weights(0.5, 0.5));
        MethodParityTests.AssertClose(a.Select(x => 2.0 * x).ToArray(), merged, 1e-6);
    }

    // ---- karcher ----

    [Theory]
    [InlineData(2, false, 10, 1e-5)]
    [InlineData(3, false, 10, 1e-5)]
    [InlineData(3, true, 10, 1e-5)]
    [InlineData(4, true, 2, 1e-5)]
    [InlineData(5, false, 50, 1e-9)]
    public void Karcher_matches_float64_mergekit_iteration(int models, bool withBase, int maxIter, double tol)
    {
        int n = 120;
        var baseV = Random(121, n);
        var xs = Enumerable.Range(0, models).Select(k => baseV.Select((x, i) => x + Random(122 + k, n, 1.5)[i]).ToArray()).ToArray();
        var merged = Merge(new KarcherMethod(), withBase ? baseV : null, xs, new() { ["max_iter"] = maxIter.ToString(), ["tol"] = F(tol) });
        var points = xs.Select(ToDouble).Concat(withBase ? [ToDouble(baseV)] : []).ToArray();
        MethodParityTests.AssertClose(Karcher(points, maxIter, tol), merged, 5e-6);
    }

    [Fact]
    public void Karcher_of_one_direction_at_different_norms_is_that_direction_at_the_mean_norm()
    {
        var a = Random(131, 30);
        var merged = Merge(new KarcherMethod(), null, [a, a.Select(x => 2 * x).ToArray(), a.Select(x => 6 * x).ToArray()], new());
        MethodParityTests.AssertClose(a.Select(x => 3.0 * x).ToArray(), merged, 1e-6);
    }

    [Fact]
    public void Karcher_ignores_a_zero_tensor_for_the_direction_but_counts_it_in_the_norm()
    {
        var a = Random(141, 30);
        var b = Random(142, 30);
        var zero = new float[30];
        var merged = Merge(new KarcherMethod(), null, [a, b, zero], new());
        MethodParityTests.AssertClose(Karcher([ToDouble(a), ToDouble(b), ToDouble(zero)], 10, 1e-5), merged, 5e-6);
        Assert.Equal(new float[30], Merge(new KarcherMethod(), null, [zero, zero], new()));
    }

    [Fact]
    public void Karcher_of_two_antipodal_tensors_keeps_the_first_direction()
    {
        var a = Random(151, 30);
        var merged = Merge(new KarcherMethod(), null, [a, a.Select(x => -x).ToArray()], new());
        MethodParityTests.AssertClose(Karcher([ToDouble(a), ToDouble(a.Select(x => -x).ToArray())], 10, 1e-5), merged, 1e-6);
        MethodParityTests.AssertClose(ToDouble(a), merged, 1e-6);
    }
}
