using TaskMerge.Engine.Models;
using TaskMerge.Engine.Optim;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tests.Models;
using TaskMerge.Engine.Tests.Training;
using TaskMerge.Engine.Training;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// One RI training step of a tiny CLIP tower (<see cref="ClipVisionTraining"/>: forward with saved
/// activations, full backward, AdamW) on the device backend (ILGPU's CPU simulator) against the
/// CPU backend, whose gradients are checked against float64 finite differences elsewhere.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class DeviceTrainingTests(IlgpuCpuFixture fixture)
{
    internal sealed record StepResult(float[] Embeds, Dictionary<string, float[]> Grads, Dictionary<string, float[]> Updated);

    /// <summary>Forward, backward of dz, and one AdamW step from <paramref name="weights"/> on <paramref name="be"/>.</summary>
    internal static StepResult Step(IBackend be, ClipVisionConfig config, Dictionary<string, float[]> weights, float[] pixels, float[] dz, int batch,
        AdamSettings settings)
    {
        using var model = new ClipVisionTraining(be, config, weights);
        using var x = be.FromHost((float[])pixels.Clone(), batch, config.NumChannels, config.ImageSize, config.ImageSize);
        var act = model.Forward(x);
        var embeds = act.Embeds.ToArray();
        model.ZeroGradients();
        using (var d = be.FromHost((float[])dz.Clone(), batch, config.ProjectionDim)) model.Backward(act, d);
        var grads = model.Gradients.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        model.OptimizerStep(1, settings);
        return new StepResult(embeds, grads, model.ParametersToHost());
    }

    /// <summary>
    /// Embeddings within <paramref name="embedTol"/> of their scale; every gradient within
    /// <paramref name="gradTol"/> of max(its tensor's scale, 1 % of the largest gradient); every
    /// updated parameter within <paramref name="paramTol"/>·lr; and every tensor but the zero-gradient
    /// k_proj.bias moved by the step.
    /// </summary>
    internal static void AssertSameStep(StepResult cpu, StepResult dev, Dictionary<string, float[]> weights, AdamSettings settings,
        double embedTol, double gradTol, double paramTol)
    {
        BackendParity.AssertClose(cpu.Embeds, dev.Embeds, embedTol, "image_embeds", BackendParity.MaxAbs(cpu.Embeds));
        double gradScale = cpu.Grads.Values.Max(BackendParity.MaxAbs);
        double worstGrad = 0, worstParam = 0;
        foreach (var (name, g) in cpu.Grads)
        {
            double scale = Math.Max(BackendParity.MaxAbs(g), 1e-2 * gradScale);
            double gErr = g.Zip(dev.Grads[name], (a, b) => Math.Abs(a - b)).Max() / scale;
            double pErr = cpu.Updated[name].Zip(dev.Updated[name], (a, b) => Math.Abs(a - b)).Max() / settings.Lr;
            (worstGrad, worstParam) = (Math.Max(worstGrad, gErr), Math.Max(worstParam, pErr));
            Assert.True(gErr <= gradTol, $"{name}: gradient differs by {gErr:E2} of its scale");
            Assert.True(pErr <= paramTol, $"{name}: updated parameter differs by {pErr:E2} of the learning rate");
            if (name.EndsWith("k_proj.bias", StringComparison.Ordinal)) continue;   // zero gradient: only the decay moves it
            double moved = weights[name].Zip(cpu.Updated[name], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(moved > 0.1 * settings.Lr, $"{name}: the step did not move the parameter ({moved:E2})");
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"worst gradient difference {worstGrad:E2} of scale, worst parameter difference {worstParam:E2}·lr");
    }

    [Fact]
    public void A_training_step_on_the_device_backend_matches_the_cpu_backend()
    {
        var s = new TinyModels.ClipShape(Layers: 1);
        var config = ClipVisionBackwardTests.Config(s);
        var weights = ClipVisionBackwardTests.Dict(TinyModels.ClipHf(s, seed: 21));
        const int batch = 2;
        var pixels = ClipVisionParityTests.Pixels(batch, s, 6);
        var dz = TinyModels.Random(new Random(9), batch * s.Projection, 1);
        // A large ε keeps Adam's first step, lr·g/(|g| + ε), smooth where a gradient is float noise
        // (k_proj.bias is analytically zero), so the update compares as tightly as the gradient.
        var settings = new AdamSettings(1e-2f, Eps: 1e-3f, WeightDecay: 0.1f, Decoupled: true);
        var cpu = Step(fixture.Cpu, config, weights, pixels, dz, batch, settings);
        var dev = Step(fixture.Device, config, weights, pixels, dz, batch, settings);
        AssertSameStep(cpu, dev, weights, settings, embedTol: 1e-5, gradTol: 1e-5, paramTol: 1e-3);
    }
}
