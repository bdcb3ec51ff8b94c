using TaskMerge.Engine.Tests.Models;
using TaskMerge.Kernels;
using Xunit;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>The double-precision erf and the activations built on it.</summary>
public sealed class NnMathTests
{
    [Theory]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(2.0, 0.9953222650189527)]
    [InlineData(-3.0, -0.9999779095030014)]
    [InlineData(0.1, 0.1124629160182849)]
    [InlineData(4.5, 0.9999999998033839)]
    [InlineData(0.0, 0.0)]
    public void ErfMatchesKnownValues(double x, double expected) =>
        Assert.InRange(Math.Abs(NnMath.Erf(x) - expected), 0, 1e-14 * Math.Max(1, Math.Abs(expected)));

    [Fact]
    public void ErfAgreesWithAnIndependentSeriesAcrossItsRange()
    {
        double worst = 0;
        for (double x = -7; x <= 7; x += 0.0137)
        {
            double r = Float64Reference.Erf(x);
            worst = Math.Max(worst, Math.Abs(NnMath.Erf(x) - r) / Math.Max(Math.Abs(r), 1e-300));
        }
        Assert.InRange(worst, 0, 1e-14);
        Assert.Equal(1.0, NnMath.Erf(double.PositiveInfinity));
        Assert.True(double.IsNaN(NnMath.Erf(double.NaN)));
        Assert.Equal(1e-10 * 2 / Math.Sqrt(Math.PI), NnMath.Erf(1e-10), 1e-25);
    }

    [Fact]
    public void ActivationsMatchTheirDefinitions()
    {
        foreach (float x in new[] { -6f, -2.5f, -1f, -0.3f, 0f, 1e-6f, 0.7f, 1.5f, 4f, 9f })
        {
            Assert.Equal(Float64Reference.Act("gelu", x), NnMath.Gelu(x), Math.Max(1e-7, 1e-6 * Math.Abs(x)));
            Assert.Equal(Float64Reference.Act("quick_gelu", x), NnMath.QuickGelu(x), Math.Max(1e-7, 1e-6 * Math.Abs(x)));
            Assert.Equal(Math.Tanh(x), NnMath.Tanh(x), 1e-7);
        }
        Assert.Equal(1e-6f, NnMath.Tanh(1e-6f));
    }
}

/// <summary>
/// The device exp written from + − × ÷ (<see cref="NnMath.Exp"/>) and everything built on it, in ulps
/// against .NET's Math/MathF (the C runtime's libm, itself within 1 ulp of e^x) over dense sweeps and
/// the edge values. The bounds asserted here are the ones <c>bench/results/device-math-ulp.md</c> reports.
/// </summary>
public sealed class DeviceMathUlpTests(ITestOutputHelper output)
{
    private static long Ulps(double a, double b)
    {
        if (double.IsNaN(a) || double.IsNaN(b)) return double.IsNaN(a) && double.IsNaN(b) ? 0 : long.MaxValue;
        if (a == b) return 0;
        if (Math.Sign(a) != Math.Sign(b)) return long.MaxValue;
        return Math.Abs(BitConverter.DoubleToInt64Bits(a) - BitConverter.DoubleToInt64Bits(b));
    }

    private static long Ulps(float a, float b)
    {
        if (float.IsNaN(a) || float.IsNaN(b)) return float.IsNaN(a) && float.IsNaN(b) ? 0 : long.MaxValue;
        if (a == b) return 0;
        if (Math.Sign(a) != Math.Sign(b)) return long.MaxValue;
        return Math.Abs((long)BitConverter.SingleToInt32Bits(a) - BitConverter.SingleToInt32Bits(b));
    }

    /// <summary>Every 2⁻¹⁰ ulp-spaced-ish point of [−746, 710] (about 3·10⁶ of them) plus random doubles of that range.</summary>
    private static IEnumerable<double> ExpArguments()
    {
        for (double x = -746; x <= 710; x += 1.0 / 2048) yield return x;
        var rng = new Random(13);
        for (int i = 0; i < 1_000_000; i++) yield return -746 + 1456 * rng.NextDouble();
        for (int i = 0; i < 200_000; i++) yield return (rng.NextDouble() - 0.5) * 1e-3; // near 0, where r is tiny
    }

    [Fact]
    public void ExpIsWithinOneUlpOfDotNetEverywhereAndExactAtTheEdges()
    {
        long worst = 0;
        double at = 0;
        foreach (double x in ExpArguments())
        {
            long u = Ulps(NnMath.Exp(x), Math.Exp(x));
            if (u > worst) (worst, at) = (u, x);
        }
        output.WriteLine($"exp: max {worst} ulp vs Math.Exp (at x = {at:R})");
        Assert.InRange(worst, 0, 1);

        Assert.Equal(1.0, NnMath.Exp(0.0));
        Assert.Equal(1.0, NnMath.Exp(-0.0));
        Assert.True(double.IsNaN(NnMath.Exp(double.NaN)));
        Assert.Equal(double.PositiveInfinity, NnMath.Exp(double.PositiveInfinity));
        Assert.Equal(0.0, NnMath.Exp(double.NegativeInfinity));
        Assert.Equal(double.PositiveInfinity, NnMath.Exp(709.79));
        Assert.Equal(double.PositiveInfinity, NnMath.Exp(1e300));
        Assert.True(double.IsFinite(NnMath.Exp(709.78)));
        Assert.Equal(0.0, NnMath.Exp(-746.0));
        Assert.Equal(0.0, NnMath.Exp(-1e300));
        Assert.Equal(double.Epsilon, NnMath.Exp(-744.5)); // the smallest subnormal, rounded once
        foreach (double x in new[] { 1.0, -1.0, 0.5, 700.0, -700.0, -720.0, -740.0, 709.7, 1e-300, -1e-300, 2.220446049250313e-16 })
            Assert.InRange(Ulps(NnMath.Exp(x), Math.Exp(x)), 0, 1);
    }

    [Fact]
    public void SingleExpTanhAndTheActivationsAreWithinOneFloatUlpOfDotNet()
    {
        long exp = 0, tanh = 0, quick = 0, gelu = 0;
        for (float x = -104f; x <= 89f; x = MathF.BitIncrement(x) + 1e-4f)
        {
            exp = Math.Max(exp, Ulps(NnMath.ExpF(x), MathF.Exp(x)));
            tanh = Math.Max(tanh, Ulps(NnMath.Tanh(x), (float)Math.Tanh(x)));
            quick = Math.Max(quick, Ulps(NnMath.QuickGelu(x), x * (1f / (1f + MathF.Exp(-1.702f * x)))));
            // Below −5, 1 + erf(x/√2) cancels to a few significant digits in any float64 evaluation, so ulps say nothing there.
            if (x > -5f) gelu = Math.Max(gelu, Ulps(NnMath.Gelu(x), (float)(x * 0.5 * (1.0 + Float64Reference.Erf(x / Math.Sqrt(2))))));
        }
        output.WriteLine($"float ulps vs .NET: expf {exp}, tanh {tanh}, quick_gelu {quick}, gelu (vs the float64 series erf) {gelu}");
        Assert.InRange(exp, 0, 1);
        Assert.InRange(tanh, 0, 1);
        Assert.InRange(quick, 0, 3); // expf's 1 ulp, carried through 1 + e, 1/(·) and x·σ in float32 (PyTorch's order)
        Assert.InRange(gelu, 0, 1);
        Assert.Equal(float.PositiveInfinity, NnMath.ExpF(89f));
        Assert.Equal(0f, NnMath.ExpF(-104f));
        Assert.True(float.IsNaN(NnMath.ExpF(float.NaN)));
        Assert.True(float.IsNaN(NnMath.Tanh(float.NaN)));
        Assert.Equal(1f, NnMath.Tanh(float.PositiveInfinity));
        Assert.Equal(-1f, NnMath.Tanh(float.NegativeInfinity));
        Assert.Equal(-0f, NnMath.Tanh(-0f));
    }

    /// <summary>
    /// .NET has no erf, so the reference is the independent float64 series (<see cref="Float64Reference.Erf"/>),
    /// whose own rounding grows with |x| (a long sum of positive terms times e^(−x²)). Measured: 9 ulps for
    /// |x| ≤ 2 and 17 ulps (1.9·10⁻¹⁵ absolute near ±1) out to |x| = 6.5, the same numbers as with
    /// <c>Math.Exp</c> in place of the device exp, so the device exp adds nothing visible at this resolution.
    /// </summary>
    [Fact]
    public void ErfIsWithinAFewUlpsOfTheIndependentSeriesAcrossItsRange()
    {
        long inner = 0, outer = 0;
        for (double x = -6.5; x <= 6.5; x += 1.0 / 4096)
        {
            long u = Ulps(NnMath.Erf(x), Float64Reference.Erf(x));
            if (Math.Abs(x) <= 2) inner = Math.Max(inner, u);
            else outer = Math.Max(outer, u);
        }
        output.WriteLine($"erf: max {inner} ulp for |x| <= 2, {outer} ulp beyond, vs the float64 series reference");
        Assert.InRange(inner, 0, 10);
        Assert.InRange(outer, 0, 20);
        Assert.Equal(1.0, NnMath.Erf(6.5));
        Assert.Equal(-0.0, NnMath.Erf(-0.0));
    }
}
