using TaskMerge.Engine.Config;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;

namespace TaskMerge.Engine.Tests.Methods;

public class MethodParityTests
{
    private static readonly CpuBackend Cpu = new(2);

    /// <summary>Random values quantised to multiples of 1/8 so that magnitudes tie and signs cancel exactly.</summary>
    private static float[] Quantised(Random r, int n, double zeroFraction = 0.1) =>
        Enumerable.Range(0, n).Select(_ => r.NextDouble() < zeroFraction ? 0f : (float)(r.Next(-16, 17) / 8.0)).ToArray();

    private static float[] Gaussianish(Random r, int n) =>
        Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() - 0.5) * 0.02 + (r.NextDouble() < 0.01 ? 0.5 : 0))).ToArray();

    internal static (Tensor merged, Dictionary<string, object> diag) RunMethod(IMergeMethod method, float[] baseV, float[][] experts,
        Dictionary<string, string> globals, Dictionary<string, string>[] perModel, ulong seed = 0, string name = "layers.0.w", int[]? shape = null,
        CpuBackend? backend = null)
    {
        var cpu = backend ?? Cpu;
        shape ??= [baseV.Length];
        ParameterSetting S(string v) => new ScalarSetting(v);
        var warnings = new List<string>();
        var ps = new MergeParameters(method.Parameters,
            globals.ToDictionary(kv => kv.Key, kv => S(kv.Value)),
            perModel.Select(d => (IReadOnlyDictionary<string, ParameterSetting>)d.ToDictionary(kv => kv.Key, kv => S(kv.Value))).ToList(),
            warnings);
        Assert.Empty(warnings);
        var b = cpu.Wrap((float[])baseV.Clone(), shape);
        var ex = experts.Select((e, i) => new ExpertTensor(i, cpu.Wrap((float[])e.Clone(), shape))).ToList();
        var diag = new Dictionary<string, object>();
        var result = method.Merge(new TensorGroup
        {
            Name = name, Depth = 0, Base = b, Experts = ex, Backend = cpu, Parameters = ps, Seed = seed, Diagnostics = diag,
        });
        return (result, diag);
    }

    internal static void AssertClose(double[] expected, float[] actual, double relTol = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = Math.Max(1e-12, expected.Max(Math.Abs));
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relTol * scale + 1e-7 * Math.Abs(expected[i]),
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }

    public static TheoryData<int, double, double> TiesCases => new()
    {
        { 1, 0.5, 1.0 }, { 2, 0.2, 1.0 }, { 3, 0.7, 0.5 }, { 4, 1.0, 1.0 }, { 5, 0.34, 2.0 },
    };

    [Theory]
    [MemberData(nameof(TiesCases))]
    public void Ties_matches_float64_reference_with_magnitude_ties_and_sign_cancellation(int seed, double density, double lambda)
    {
        var r = new Random(seed);
        int n = 997;
        var baseV = Quantised(r, n);
        var experts = Enumerable.Range(0, 4).Select(_ => Quantised(r, n).Select((v, i) => v + baseV[i]).ToArray()).ToArray();
        double[] weights = [1.0, 0.5, 2.0, -0.25];
        double[] dens = [density, density, Math.Min(1, density + 0.2), density];
        var per = weights.Select((w, i) => new Dictionary<string, string> { ["weight"] = $"{w}", ["density"] = $"{dens[i]}" }).ToArray();
        var (merged, _) = RunMethod(new TiesMethod(), baseV, experts, new() { ["lambda"] = $"{lambda}" }, per);
        var expected = GtaReference.Merge(baseV, experts, weights, dens, "magnitude", consensus: true, normalize: true, rescale: false, lambda);
        AssertClose(expected, merged.ToArray());
    }

    [Fact]
    public void Ties_without_normalize_and_with_l1_rescale_matches_reference()
    {
        var r = new Random(11);
        int n = 513;
        var baseV = Gaussianish(r, n);
        var experts = Enumerable.Range(0, 3).Select(_ => Gaussianish(r, n).Select((v, i) => v + baseV[i]).ToArray()).ToArray();
        double[] weights = [0.3, 0.3, 0.4], dens = [0.3, 0.5, 0.1];
        var per = weights.Select((w, i) => new Dictionary<string, string> { ["weight"] = $"{w}", ["density"] = $"{dens[i]}" }).ToArray();
        var (merged, _) = RunMethod(new TiesMethod(), baseV, experts, new() { ["normalize"] = "false", ["rescale"] = "true" }, per);
        var expected = GtaReference.Merge(baseV, experts, weights, dens, "magnitude", true, normalize: false, rescale: true, 1.0);
        AssertClose(expected, merged.ToArray());
    }

    [Theory]
    [InlineData(1.0, false)]
    [InlineData(0.3, false)]
    [InlineData(0.7, true)]
    public void Task_arithmetic_matches_reference(double lambda, bool normalize)
    {
        var r = new Random(3);
        int n = 1000;
        var baseV = Gaussianish(r, n);
        var experts = Enumerable.Range(0, 3).Select(_ => Gaussianish(r, n)).ToArray();
        double[] weights = [1, 0.5, 0.25];
        var per = weights.Select(w => new Dictionary<string, string> { ["weight"] = $"{w}" }).ToArray();
        var (merged, _) = RunMethod(new TaskArithmeticMethod(), baseV, experts,
            new() { ["lambda"] = $"{lambda}", ["normalize"] = normalize ? "true" : "false" }, per);
        var expected = GtaReference.Merge(baseV, experts, weights, [1, 1, 1], "none", false, normalize, false, lambda);
        AssertClose(expected, merged.ToArray());
    }

    [Theory]
    [InlineData("dare_linear", 0.3)]
    [InlineData("dare_ties", 0.5)]
    [InlineData("dare_ties", 0.9)]
    public void Dare_matches_reference_given_the_counter_rng_mask(string name, double density)
    {
        var r = new Random(5);
        int n = 2049;
        var baseV = Gaussianish(r, n);
        var experts = Enumerable.Range(0, 3).Select(_ => Gaussianish(r, n)).ToArray();
        double[] weights = [1, 0.7, 0.4];
        const ulong seed = 42;
        var per = weights.Select(w => new Dictionary<string, string> { ["weight"] = $"{w}", ["density"] = $"{density}" }).ToArray();
        var (merged, _) = RunMethod(MethodRegistry.Create(name), baseV, experts, new(), per, seed, "layers.3.mlp.w");
        var expected = GtaReference.Merge(baseV, experts, weights, [density, density, density], "random",
            consensus: name == "dare_ties", normalize: false, rescale: true, 1.0,
            (e, i) => GtaReference.DareKeep(seed, "layers.3.mlp.w", e, i, density));
        AssertClose(expected, merged.ToArray(), 2e-6);
    }

    [Fact]
    public void Dare_keep_mask_is_the_philox_draw_below_density_and_keeps_about_density()
    {
        const int n = 100_000;
        var t = Cpu.Wrap(Enumerable.Range(0, n).Select(i => 1f + i % 7).ToArray(), n);
        Cpu.BernoulliKeep(t, 0.3f, 7, 1);
        var kept = t.ToArray();
        for (int i = 0; i < n; i++)
        {
            bool keep = CounterRng.Uniform(7, 1, (ulong)i) < 0.3f;
            Assert.True(kept[i] == (keep ? 1f + i % 7 : 0f), $"entry {i}: {kept[i]}, keep = {keep}");
        }
        double fraction = kept.Count(v => v != 0) / (double)n;
        Assert.InRange(fraction, 0.3 - 4 * Math.Sqrt(0.21 / n), 0.3 + 4 * Math.Sqrt(0.21 / n));
        var u = Cpu.Wrap(Enumerable.Repeat(1f, n).ToArray(), n);
        Cpu.BernoulliKeep(u, 0.3f, 8, 1);
        Assert.NotEqual(kept.Select(v => v != 0), u.ToArray().Select(v => v != 0));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Linear_matches_reference(bool normalize)
    {
        var r = new Random(9);
        var models = Enumerable.Range(0, 3).Select(_ => Gaussianish(r, 300)).ToArray();
        double[] weights = [0.2, 0.3, 0.9];
        var per = weights.Select(w => new Dictionary<string, string> { ["weight"] = $"{w}" }).ToArray();
        var (merged, _) = RunMethod(new LinearMethod(), models[0], models, new() { ["normalize"] = normalize ? "true" : "false" }, per);
        AssertClose(GtaReference.Linear(models, weights, normalize), merged.ToArray());
    }

    [Fact]
    public void Ties_density_that_keeps_nothing_is_bad_input_naming_the_tensor()
    {
        var e = Assert.Throws<BadInputException>(() => RunMethod(new TiesMethod(), [0f, 0f], [[1f, 2f]], new(),
            [new() { ["density"] = "0.4" }], name: "tiny.bias"));
        Assert.Contains("tiny.bias", e.Message);
    }

    [Fact]
    public void Keep_top_k_keeps_exactly_k_with_lowest_index_ties()
    {
        float[] v = [1, -2, 2, 0.5f, -2, 2, 3, 0];
        var t = Cpu.Wrap((float[])v.Clone(), v.Length);
        Cpu.KeepTopKMagnitude(t, 3);
        Assert.Equal(new float[] { 0, -2, 2, 0, 0, 0, 3, 0 }, t.ToArray());
    }

    [Fact]
    public void Keep_top_k_on_a_large_tensor_matches_a_sort()
    {
        var r = new Random(1);
        var v = Enumerable.Range(0, 300_000).Select(_ => (float)Math.Round(r.NextDouble() * 200 - 100, 1)).ToArray();
        var t = Cpu.Wrap((float[])v.Clone(), v.Length);
        const int k = 12_345;
        Cpu.KeepTopKMagnitude(t, k);
        var keep = Enumerable.Range(0, v.Length).OrderByDescending(i => Math.Abs(v[i])).ThenBy(i => i).Take(k).ToHashSet();
        var got = t.ToArray();
        for (int i = 0; i < v.Length; i++) Assert.Equal(keep.Contains(i) ? v[i] : 0f, got[i]);
    }
}
