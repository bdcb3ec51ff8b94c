using System.Diagnostics;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Optim;
using TaskMerge.Engine.Tests.Kernels;
using TaskMerge.Engine.Tests.Models;
using TaskMerge.Engine.Training;
using Xunit;

namespace TaskMerge.Engine.Tests.Gpu;

/// <summary>
/// An RI training step (<see cref="ClipVisionTraining"/>) on a real GPU at ViT-B/32 layer shapes
/// (2 layers, batch 4) against the CPU backend. Skipped, with the reason, where there is no usable CUDA device.
/// </summary>
public sealed class CudaTrainingTests(CudaFixture fixture, ITestOutputHelper output) : IClassFixture<CudaFixture>
{
    [Fact]
    public void A_vit_b32_shaped_training_step_on_the_gpu_matches_the_cpu()
    {
        var gpu = fixture.Require();
        var config = new ClipVisionConfig { NumHiddenLayers = 2 };
        var rng = new Random(5);
        // N(0, 0.02²) weight matrices (CLIP's init), LayerNorm γ ≈ 1, O(0.1) biases and embeddings.
        var weights = ClipVisionTraining.ParameterShapes(config).ToDictionary(p => p.Name, p =>
        {
            int n = p.Shape.Aggregate(1, (a, b) => a * b);
            if (p.Name.EndsWith(".weight", StringComparison.Ordinal) && p.Name != ClipVisionTraining.Positions)
                return p.Shape.Length == 1 ? TinyModels.Random(rng, n, 0.1, 1.0) : TinyModels.Random(rng, n, 0.02);
            return TinyModels.Random(rng, n, 0.1);
        });
        const int batch = 4;
        var pixels = TinyModels.Random(rng, batch * 3 * config.ImageSize * config.ImageSize, 1.0);
        var dz = TinyModels.Random(rng, batch * config.ProjectionDim, 1.0);
        var settings = new AdamSettings(1e-2f, Eps: 1e-3f, WeightDecay: 0.1f, Decoupled: true);
        var cpu = DeviceTrainingTests.Step(fixture.Cpu, config, weights, pixels, dz, batch, settings);
        DeviceTrainingTests.Step(gpu, config, weights, pixels, dz, batch, settings);
        var clock = Stopwatch.StartNew();
        var dev = DeviceTrainingTests.Step(gpu, config, weights, pixels, dz, batch, settings);
        output.WriteLine($"{gpu.Name} ({gpu.MatrixEngine}): upload + step + download {clock.Elapsed.TotalMilliseconds:F0} ms");
        DeviceTrainingTests.AssertSameStep(cpu, dev, weights, settings, embedTol: 1e-4, gradTol: 1e-4, paramTol: 1e-2);
    }
}
