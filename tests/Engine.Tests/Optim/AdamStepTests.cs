using TaskMerge.Engine.Optim;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.Methods;

namespace TaskMerge.Engine.Tests.Optim;

public class AdamStepTests
{
    [Theory]
    [InlineData(1e-5, 0.0, false, 1e-3)]
    [InlineData(1e-3, 0.01, false, 1.0)]
    [InlineData(1e-3, 0.1, true, 1.0)]
    public void Backend_adam_step_follows_torch_adam_restated_in_float64(double lr, double weightDecay, bool decoupled, double scale)
    {
        const int n = 3000, steps = 200;
        var r = new Random(1);
        var cpu = new CpuBackend(2);
        // With weight decay, parameters start away from 0 so that no element's trajectory crosses it:
        // there the sign of g flips on rounding noise and float32 and float64 legitimately part ways.
        var p0 = Enumerable.Range(0, n).Select(i => (float)(scale * (i % 2 == 0 ? 1 : -1) * (0.3 + 0.7 * r.NextDouble()))).ToArray();
        using var p = cpu.Wrap((float[])p0.Clone(), n);
        using var m = cpu.Zeros(n);
        using var v = cpu.Zeros(n);
        using var g = cpu.Empty(n);
        var reference = new TorchAdam(n, lr, weightDecay: weightDecay, decoupled: decoupled);
        var pd = p0.Select(x => (double)x).ToArray();
        var settings = new AdamSettings((float)lr, WeightDecay: (float)weightDecay, Decoupled: decoupled);
        for (int t = 1; t <= steps; t++)
        {
            // Gradients of varied sign and scale, some far below eps, some near it.
            var grad = Enumerable.Range(0, n).Select(i => (float)((r.NextDouble() - 0.3) * Math.Pow(10, -(i % 10)))).ToArray();
            cpu.Upload(grad, g);
            cpu.AdamStep(p, g, m, v, t, settings);
            reference.Step(pd, grad.Select(x => (double)x).ToArray());
        }
        // v drifts by (0.999f/0.999)^t − 1 ≈ 2.6e-6 over 200 steps because β₂ is a float32 scalar, as in
        // torch's float32 kernels; taking 1 − β₂ in float32 instead would be off by 1.3e-5.
        AssertRelative(reference.ExpAvgSq, v.ToArray(), 5e-6);
        AssertRelative(reference.ExpAvg, m.ToArray(), 2e-6);
        var moved = pd.Select((x, i) => x - p0[i]).ToArray();
        var gotMoved = p.ToArray().Select((x, i) => (double)x - p0[i]).ToArray();
        double err = Math.Sqrt(moved.Select((x, i) => (x - gotMoved[i]) * (x - gotMoved[i])).Sum() / moved.Sum(x => x * x));
        // AdamW's factor 1 − lr·wd = 0.9999 is a float32 scalar (as in torch): 3e-8 per step, 2e-5 of the displacement.
        Assert.True(err <= 5e-5, $"relative error of the parameter displacement {err:E2}");
    }

    /// <summary>Normwise relative error within each gradient decade (elements i ≡ k mod 10 share a scale).</summary>
    private static void AssertRelative(double[] expected, float[] actual, double tolerance)
    {
        for (int k = 0; k < 10; k++)
        {
            double num = 0, den = 0;
            for (int i = k; i < expected.Length; i += 10)
            {
                num += (expected[i] - actual[i]) * (expected[i] - actual[i]);
                den += expected[i] * expected[i];
            }
            double err = Math.Sqrt(num / den);
            Assert.True(err <= tolerance, $"gradient scale 1e-{k}: relative error {err:E2}");
        }
    }

    [Fact]
    public void One_minus_beta_is_taken_from_the_values_as_written()
    {
        var s = new AdamSettings(1e-3f).Scalars(1);
        Assert.Equal(0.1f, s.OneMinusBeta1);
        Assert.Equal(0.001f, s.OneMinusBeta2);
    }
}
