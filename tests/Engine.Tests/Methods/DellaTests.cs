using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Tests.Methods;

public class DellaTests
{
    private const string TensorName = "layers.2.mlp.w";

    private static float[] Quantised(Random r, int n) =>
        Enumerable.Range(0, n).Select(_ => r.NextDouble() < 0.1 ? 0f : (float)(r.Next(-16, 17) / 8.0)).ToArray();

    /// <summary>
    /// mergekit's della_magprune mask, restated: rank along dimension 1 (1-D: the whole tensor) by ascending
    /// magnitude, equal magnitudes ordered by descending index; p = (density − ε) + 2ε·rank/(line − 1);
    /// keep when the counter-RNG draw of the flat index is below p.
    /// </summary>
    internal static bool[] Mask(float[] baseV, float[] expert, int[] shape, double density, double epsilon, ulong seed, int model, string tensor = TensorName)
    {
        int n = baseV.Length;
        var tv = baseV.Select((b, i) => Math.Abs((double)(float)(expert[i] - b))).ToArray();
        int line = shape.Length < 2 ? n : shape[1];
        int inner = shape.Length < 2 ? 1 : n / (shape[0] * shape[1]);
        int outer = n / (line * inner);
        var keep = new bool[n];
        ulong stream = CounterRng.StreamId(tensor, model);
        for (int o = 0; o < outer; o++)
            for (int c = 0; c < inner; c++)
            {
                var members = Enumerable.Range(0, line).Select(j => o * line * inner + j * inner + c).ToArray();
                var ascending = members.OrderBy(i => tv[i]).ThenByDescending(i => i).ToArray();
                for (int rank = 0; rank < line; rank++)
                {
                    double p = line == 1 ? density - epsilon : density - epsilon + 2 * epsilon * rank / (line - 1);
                    keep[ascending[rank]] = CounterRng.Uniform(seed, stream, (ulong)ascending[rank]) < p;
                }
            }
        return keep;
    }

    private static void AssertClose(double[] expected, float[] actual, double relTol = 2e-6)
    {
        double scale = Math.Max(1e-12, expected.Max(Math.Abs));
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relTol * scale + 1e-7 * Math.Abs(expected[i]),
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }

    [Theory]
    [InlineData("della", new[] { 2049 }, 0.5, 0.15)]
    [InlineData("della", new[] { 40, 51 }, 0.3, 0.2)]
    [InlineData("della_linear", new[] { 40, 51 }, 0.7, 0.1)]
    [InlineData("della_linear", new[] { 6, 5, 4, 3 }, 0.5, 0.15)]
    [InlineData("della", new[] { 6, 5, 4, 3 }, 0.4, 0.3)]
    public void Della_matches_float64_reference_given_the_counter_rng_draws(string method, int[] shape, double density, double epsilon)
    {
        var r = new Random(shape.Sum());
        int n = shape.Aggregate(1, (a, b) => a * b);
        var baseV = Quantised(r, n);
        var experts = Enumerable.Range(0, 3).Select(_ => Quantised(r, n).Select((v, i) => v + baseV[i]).ToArray()).ToArray();
        double[] weights = [1, 0.7, 0.4];
        double[] dens = [density, density, Math.Min(1, density + 0.05)];
        double[] eps = [epsilon, epsilon / 2, epsilon];
        const ulong seed = 42;
        var per = weights.Select((w, i) => new Dictionary<string, string> { ["weight"] = $"{w}", ["density"] = $"{dens[i]}", ["epsilon"] = $"{eps[i]}" }).ToArray();
        var (merged, _) = MethodParityTests.RunMethod(MethodRegistry.Create(method), baseV, experts, new() { ["lambda"] = "0.8" }, per, seed, TensorName, shape);
        var masks = experts.Select((e, k) => Mask(baseV, e, shape, dens[k], eps[k], seed, k)).ToArray();
        bool ties = method == "della";
        var expected = GtaReference.Merge(baseV, experts, weights, dens, "random", consensus: ties, normalize: ties, rescale: true, 0.8,
            (e, i) => masks[e][i]);
        AssertClose(expected, merged.ToArray());
    }

    [Fact]
    public void Della_keeps_about_density_and_favours_large_magnitudes()
    {
        const int rows = 200, cols = 1000;
        var tv = new float[rows * cols];
        for (int i = 0; i < tv.Length; i++) tv[i] = (i % cols + 1) * ((i / cols) % 2 == 0 ? 1 : -1);
        var (merged, _) = MethodParityTests.RunMethod(new DellaLinearMethod(), new float[tv.Length], [tv], new() { ["rescale"] = "false" },
            [new() { ["density"] = "0.4", ["epsilon"] = "0.3" }], seed: 3, name: TensorName, shape: [rows, cols]);
        var kept = merged.ToArray().Select(v => v != 0).ToArray();
        Assert.InRange(kept.Count(k => k) / (double)kept.Length, 0.39, 0.41);
        double Rate(int lo, int hi) => Enumerable.Range(0, rows).Sum(rr => Enumerable.Range(lo, hi - lo).Count(c => kept[rr * cols + c])) / (double)(rows * (hi - lo));
        Assert.InRange(Rate(0, 100), 0.10, 0.16);
        Assert.InRange(Rate(900, 1000), 0.64, 0.70);
    }

    [Fact]
    public void Della_depends_on_the_seed()
    {
        var r = new Random(1);
        var x = Enumerable.Range(0, 500).Select(_ => (float)r.NextDouble()).ToArray();
        var (a, _) = MethodParityTests.RunMethod(new DellaLinearMethod(), new float[500], [x], new(), [new() { ["density"] = "0.5" }], seed: 1);
        var (b, _) = MethodParityTests.RunMethod(new DellaLinearMethod(), new float[500], [x], new(), [new() { ["density"] = "0.5" }], seed: 2);
        Assert.NotEqual(a.ToArray(), b.ToArray());
    }

    [Theory]
    [InlineData("della")]
    [InlineData("della_linear")]
    public void Density_one_keeps_everything_and_zero_keeps_nothing(string method)
    {
        float[] baseV = [1, 2, 3, 4];
        float[][] experts = [[2, 2, 5, 4], [1, 4, 3, 3]];
        var (full, _) = MethodParityTests.RunMethod(MethodRegistry.Create(method), baseV, experts, new(), [new(), new() { ["epsilon"] = "0.9" }]);
        var expected = GtaReference.Merge(baseV, experts, [1, 1], [1, 1], "none", consensus: method == "della", normalize: method == "della",
            rescale: true, 1.0);
        AssertClose(expected, full.ToArray());
        var (none, _) = MethodParityTests.RunMethod(MethodRegistry.Create(method), baseV, experts, new(),
            [new() { ["density"] = "0" }, new() { ["density"] = "0" }]);
        Assert.Equal(baseV, none.ToArray());
    }

    [Theory]
    [InlineData("0.5", "0.5")]
    [InlineData("0.9", "0.15")]
    [InlineData("0.1", "0.15")]
    [InlineData("0.5", "-0.6")]
    public void Epsilon_taking_density_out_of_the_open_unit_interval_is_bad_input_naming_it(string density, string epsilon)
    {
        var e = Assert.Throws<BadInputException>(() => MethodParityTests.RunMethod(new DellaMethod(), [0f, 0f, 0f], [[1f, 2f, 3f]],
            new(), [new() { ["density"] = density, ["epsilon"] = epsilon }], name: "tiny.weight"));
        Assert.Contains("'epsilon'", e.Message);
        Assert.Contains("tiny.weight", e.Message);
    }

    [Fact]
    public void Della_defaults_match_mergekit()
    {
        var d = new DellaMethod().Parameters.ToDictionary(p => p.Name);
        Assert.Equal(0.15, d["epsilon"].Default);
        Assert.True(d["epsilon"].PerModel);
        Assert.Equal(true, d["normalize"].Default);
        Assert.Equal(true, d["rescale"].Default);
        Assert.Equal(1.0, d["lambda"].Default);
        var l = new DellaLinearMethod().Parameters.ToDictionary(p => p.Name);
        Assert.Equal(false, l["normalize"].Default);
        Assert.Equal(true, l["rescale"].Default);
        Assert.Equal(0.15, l["epsilon"].Default);
    }
}
