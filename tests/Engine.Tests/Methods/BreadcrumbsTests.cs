using TaskMerge.Engine.Methods;

namespace TaskMerge.Engine.Tests.Methods;

public class BreadcrumbsTests
{
    private static float[] Quantised(Random r, int n) =>
        Enumerable.Range(0, n).Select(_ => r.NextDouble() < 0.1 ? 0f : (float)(r.Next(-16, 17) / 8.0)).ToArray();

    private static float[] Gaussianish(Random r, int n) =>
        Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() - 0.5) * 0.02 + (r.NextDouble() < 0.01 ? 0.5 : 0))).ToArray();

    private static void AssertClose(double[] expected, float[] actual, double relTol = 1e-6) =>
        MethodParityTests.AssertClose(expected, actual, relTol);

    private static Dictionary<string, string>[] PerModel(double[] weights, double[] dens, double[] gammas) =>
        weights.Select((w, i) => new Dictionary<string, string> { ["weight"] = $"{w}", ["density"] = $"{dens[i]}", ["gamma"] = $"{gammas[i]}" }).ToArray();

    [Theory]
    [InlineData("breadcrumbs", 1, 0.5, 0.1, 1.0)]
    [InlineData("breadcrumbs", 2, 0.3, 0.01, 0.7)]
    [InlineData("breadcrumbs_ties", 3, 0.5, 0.1, 1.0)]
    [InlineData("breadcrumbs_ties", 4, 0.9, 0.2, 1.5)]
    [InlineData("breadcrumbs", 5, 1.0, 0.3, 1.0)]
    [InlineData("breadcrumbs_ties", 6, 0.4, 0.0, 1.0)]
    public void Breadcrumbs_matches_float64_reference_with_magnitude_ties(string method, int seed, double density, double gamma, double lambda)
    {
        var r = new Random(seed);
        int n = 997;
        var baseV = Quantised(r, n);
        var experts = Enumerable.Range(0, 4).Select(_ => Quantised(r, n).Select((v, i) => v + baseV[i]).ToArray()).ToArray();
        double[] weights = [1.0, 0.5, 2.0, -0.25];
        double[] dens = [density, density, Math.Min(1, density + 0.2), density];
        double[] gammas = [gamma, gamma, gamma / 2, Math.Min(1, gamma * 3)];
        var (merged, _) = MethodParityTests.RunMethod(MethodRegistry.Create(method), baseV, experts,
            new() { ["lambda"] = $"{lambda}" }, PerModel(weights, dens, gammas));
        var expected = GtaReference.Merge(baseV, experts, weights, dens, "magnitude_outliers", consensus: method == "breadcrumbs_ties",
            normalize: false, rescale: false, lambda, gammas: gammas);
        AssertClose(expected, merged.ToArray());
    }

    [Theory]
    [InlineData("breadcrumbs")]
    [InlineData("breadcrumbs_ties")]
    public void Breadcrumbs_with_normalize_and_l1_rescale_matches_reference(string method)
    {
        var r = new Random(11);
        int n = 513;
        var baseV = Gaussianish(r, n);
        var experts = Enumerable.Range(0, 3).Select(_ => Gaussianish(r, n).Select((v, i) => v + baseV[i]).ToArray()).ToArray();
        double[] weights = [0.3, 0.3, 0.4], dens = [0.3, 0.5, 0.1], gammas = [0.01, 0.05, 0.95];
        var (merged, _) = MethodParityTests.RunMethod(MethodRegistry.Create(method), baseV, experts,
            new() { ["normalize"] = "true", ["rescale"] = "true" }, PerModel(weights, dens, gammas));
        var expected = GtaReference.Merge(baseV, experts, weights, dens, "magnitude_outliers", method == "breadcrumbs_ties",
            normalize: true, rescale: true, 1.0, gammas: gammas);
        AssertClose(expected, merged.ToArray(), 2e-6);
    }

    [Fact]
    public void Breadcrumbs_drops_the_gamma_outliers_and_the_smallest_with_lower_index_ties_kept()
    {
        float[] tv = [1, -2, 2, 0.5f, -2, 2, 3, 0, 4, -0.25f];
        var (merged, _) = MethodParityTests.RunMethod(new BreadcrumbsMethod(), new float[tv.Length], [tv],
            new(), [new() { ["density"] = "0.4", ["gamma"] = "0.2" }]);
        Assert.Equal(new float[] { 0, -2, 2, 0, -2, 2, 0, 0, 0, 0 }, merged.ToArray());
    }

    [Fact]
    public void Breadcrumbs_defaults_match_mergekit()
    {
        var p = new BreadcrumbsMethod().Parameters.ToDictionary(d => d.Name);
        Assert.Equal(0.01, p["gamma"].Default);
        Assert.True(p["gamma"].PerModel);
        Assert.Equal(false, p["normalize"].Default);
        Assert.Equal(false, p["rescale"].Default);
        Assert.Equal(1.0, p["density"].Default);
        var t = new BreadcrumbsTiesMethod().Parameters.ToDictionary(d => d.Name);
        Assert.Equal(false, t["normalize"].Default);
        Assert.Equal(0.01, t["gamma"].Default);
    }

    [Fact]
    public void Breadcrumbs_density_keeping_nothing_zeroes_the_task_vector()
    {
        var (merged, _) = MethodParityTests.RunMethod(new BreadcrumbsMethod(), [1f, 1f, 1f], [[2f, 3f, 4f]],
            new(), [new() { ["density"] = "0.2" }]);
        Assert.Equal(new float[] { 1, 1, 1 }, merged.ToArray());
    }

    [Theory]
    [InlineData("gamma", "-0.1")]
    [InlineData("gamma", "1.5")]
    [InlineData("density", "-0.5")]
    public void Breadcrumbs_bad_parameter_is_bad_input_naming_it(string name, string value)
    {
        var per = new Dictionary<string, string> { ["density"] = "0.5", [name] = value };
        var e = Assert.Throws<BadInputException>(() => MethodParityTests.RunMethod(new BreadcrumbsTiesMethod(), [0f, 0f, 0f, 0f],
            [[1f, 2f, 3f, 4f]], new(), [per], name: "tiny.weight"));
        Assert.Contains($"'{name}'", e.Message);
        Assert.Contains("[0, 1]", e.Message); // the declared range, checked before any tensor is read
    }
}
