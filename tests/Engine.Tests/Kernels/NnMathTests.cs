using TaskMerge.Engine.Tests.Models;
using TaskMerge.Kernels;

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
