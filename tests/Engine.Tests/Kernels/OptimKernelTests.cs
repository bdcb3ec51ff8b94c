using TaskMerge.Engine.Optim;
using Xunit;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Kernels;

[Collection(IlgpuCpuCollection.Name)]
public sealed class OptimKernelTests(IlgpuCpuFixture fixture)
{
    [Theory]
    [InlineData(0f)]
    [InlineData(0.01f)]
    public void AdamKernelMatchesAdamStepBitForBit(float weightDecay)
    {
        const int n = 300;
        var device = fixture.Device;
        float[] p = RandomValues(n, 60), m = new float[n], v = new float[n];
        using var dp = Load(device, p);
        using var dg = device.Empty(n);
        using var dm = device.Zeros(n);
        using var dv = device.Zeros(n);
        for (int step = 1; step <= 5; step++)
        {
            float[] g = RandomValues(n, 61 + step, scale: 0.1f);
            device.Upload(g, dg);
            device.AdamStep(dp, dg, dm, dv, step, new AdamSettings(1e-3f, 0.9f, 0.999f, 1e-8f, weightDecay));
            AdamStep.Apply(p, g, m, v, step, new AdamSettings(1e-3f, 0.9f, 0.999f, 1e-8f, weightDecay));
        }
        AssertBitEqual(p, dp.ToArray(), "p");
        AssertBitEqual(m, dm.ToArray(), "m");
        AssertBitEqual(v, dv.ToArray(), "v");
    }
}

public sealed class AdamStepTests
{
    /// <summary>torch.optim.Adam's rule (non-amsgrad, L2 weight decay) in float64 with float64 hyper-parameters.</summary>
    private static void TorchAdamReference(double[] p, double[] g, double[] m, double[] v, int step,
        double lr, double beta1, double beta2, double eps, double weightDecay)
    {
        double biasCorrection1 = 1 - Math.Pow(beta1, step), biasCorrection2 = 1 - Math.Pow(beta2, step);
        double stepSize = lr / biasCorrection1;
        for (int i = 0; i < p.Length; i++)
        {
            double grad = g[i] + weightDecay * p[i];
            m[i] = beta1 * m[i] + (1 - beta1) * grad;
            v[i] = beta2 * v[i] + (1 - beta2) * grad * grad;
            double denom = Math.Sqrt(v[i]) / Math.Sqrt(biasCorrection2) + eps;
            p[i] -= stepSize * m[i] / denom;
        }
    }

    [Theory]
    [InlineData(1e-3f, 0f)]
    [InlineData(1e-5f, 0f)]
    [InlineData(1e-2f, 0.05f)]
    public void TwentyStepsFollowTorchAdamInFloat64(float lr, float weightDecay)
    {
        const int n = 1000;
        const float gradientScale = 0.05f;
        float[] p = RandomValues(n, 70), m = new float[n], v = new float[n];
        double[] p64 = p.Select(x => (double)x).ToArray(), m64 = new double[n], v64 = new double[n];
        for (int step = 1; step <= 20; step++)
        {
            float[] g = RandomValues(n, 71 + step, scale: gradientScale);
            AdamStep.Apply(p, g, m, v, step, new AdamSettings(lr, 0.9f, 0.999f, 1e-8f, weightDecay));
            TorchAdamReference(p64, g.Select(x => (double)x).ToArray(), m64, v64, step, lr, 0.9, 0.999, 1e-8, weightDecay);
        }
        // m and v are running sums of gradient terms that can cancel, so their error is measured
        // against the size of the terms, not of the (possibly tiny) result.
        for (int i = 0; i < n; i++)
        {
            Assert.True(Math.Abs(p[i] - p64[i]) <= 1e-6 * Math.Max(1, Math.Abs(p64[i])), $"p[{i}]: {p[i]:R} vs {p64[i]:R}");
            Assert.True(Math.Abs(m[i] - m64[i]) <= 1e-6 * gradientScale, $"m[{i}]: {m[i]:R} vs {m64[i]:R}");
            Assert.True(Math.Abs(v[i] - v64[i]) <= 1e-6 * Math.Max(v64[i], gradientScale * gradientScale * 1e-3), $"v[{i}]: {v[i]:R} vs {v64[i]:R}");
        }
    }

    [Fact]
    public void FirstStepMovesEachParameterByLrAgainstItsGradient()
    {
        float[] p = [1f, -2f, 0.5f], g = [0.3f, -4f, 1e-3f], m = new float[3], v = new float[3];
        AdamStep.Apply(p, g, m, v, 1, new AdamSettings(0.01f));
        Assert.Equal(1f - 0.01f, p[0], 1e-6f);
        Assert.Equal(-2f + 0.01f, p[1], 1e-6f);
        Assert.Equal(0.5f - 0.01f, p[2], 1e-5f);
        Assert.Equal(0.03f, m[0], 1e-7f);
        Assert.Equal(0.001f * 0.09f, v[0], 1e-9f);
    }

    [Fact]
    public void StepZeroAndMismatchedLengthsAreRejected()
    {
        float[] a = new float[3], b = new float[4];
        Assert.Throws<ArgumentOutOfRangeException>(() => AdamStep.Apply(a, a, a, a, 0, new AdamSettings(1e-3f)));
        Assert.Throws<ArgumentException>(() => AdamStep.Apply(a, b, a, a, 1, new AdamSettings(1e-3f)));
    }
}
