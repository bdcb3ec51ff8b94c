using TaskMerge.Engine.Methods;

namespace TaskMerge.Engine.Tests.Methods;

public class NearSwapTests
{
    /// <summary>mergekit's nearswap_merge in float64: weight = clamp(t / clamp(|a − b|, min=1e-6), 0, 1); w·b + (1 − w)·a.</summary>
    private static double[] Reference(float[] a, float[] b, double t) =>
        a.Select((x, i) =>
        {
            double w = Math.Min(1, Math.Max(0, t / Math.Max(Math.Abs((double)x - b[i]), 1e-6)));
            return w * b[i] + (1 - w) * x;
        }).ToArray();

    private static float[] Values(int seed, int n) => Enumerable.Range(0, n).Select(i => (float)(new Random(seed * 31 + i).NextDouble() - 0.5)).ToArray();

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.2)]
    [InlineData(1.0)]
    [InlineData(0)]
    [InlineData(-0.5)]
    public void NearSwap_matches_float64_mergekit_formula(double t)
    {
        var a = Values(1, 500);
        var b = Values(2, 500);
        for (int i = 0; i < 500; i += 9) b[i] = a[i];
        for (int i = 3; i < 500; i += 11) b[i] = a[i] + 1e-7f;
        var (merged, _) = MethodParityTests.RunMethod(new NearSwapMethod(), a, [b], new() { ["t"] = t.ToString(System.Globalization.CultureInfo.InvariantCulture) }, [new()]);
        MethodParityTests.AssertClose(Reference(a, b, t), merged.ToArray(), 1e-6);
    }

    [Fact]
    public void NearSwap_takes_near_values_and_moves_far_ones_by_t()
    {
        float[] a = [0, 0, 0, 1], b = [0.05f, -0.5f, 2, 1];
        var (merged, _) = MethodParityTests.RunMethod(new NearSwapMethod(), a, [b], new() { ["t"] = "0.1" }, [new()]);
        var m = merged.ToArray();
        Assert.Equal(0.05f, m[0]);
        Assert.Equal(-0.1f, m[1], 6);
        Assert.Equal(0.1f, m[2], 6);
        Assert.Equal(1f, m[3]);
    }

    [Fact]
    public void NearSwap_refuses_more_than_one_model_besides_the_base()
    {
        var a = Values(3, 10);
        var e = Assert.Throws<BadInputException>(() => MethodParityTests.RunMethod(new NearSwapMethod(), a, [a, a], new() { ["t"] = "0.1" }, [new(), new()]));
        Assert.Contains("exactly two models", e.Message);
    }
}
