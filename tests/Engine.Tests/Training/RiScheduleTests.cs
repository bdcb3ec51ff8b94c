using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tests.Models;
using TaskMerge.Engine.Training;
using Xunit;

namespace TaskMerge.Engine.Tests.Training;

/// <summary>RI's learning-rate schedules and gradient clipping against float64 references of torch/transformers' formulas.</summary>
public sealed class RiScheduleTests
{
    private static readonly TaskMerge.Engine.Tensors.Cpu.CpuBackend Cpu = new(2);

    private static readonly TinyModels.ClipShape Shape = new(Layers: 1);

    /// <summary>transformers' lr_lambda(current_step) for the three schedules, as written in optimization.py.</summary>
    private static double TransformersLambda(string kind, int currentStep, int warmup, int total)
    {
        if (currentStep < warmup) return currentStep / Math.Max(1.0, warmup);
        switch (kind)
        {
            case "constant":
                return 1.0;
            case "linear":
                return Math.Max(0.0, (double)(total - currentStep) / Math.Max(1.0, total - warmup));
            default:
                const double cycles = 0.5;
                double progress = (double)(currentStep - warmup) / Math.Max(1.0, total - warmup);
                return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * cycles * 2.0 * progress)));
        }
    }

    [Theory]
    [InlineData("constant", 0, 7)]
    [InlineData("constant", 3, 7)]
    [InlineData("cosine", 0, 9)]
    [InlineData("cosine", 4, 9)]
    [InlineData("linear", 0, 5)]
    [InlineData("linear", 2, 5)]
    [InlineData("cosine", 5, 5)]
    public void Schedule_matches_torch_LambdaLR_with_the_transformers_lambdas(string kind, int warmup, int steps)
    {
        var schedule = RiLearningRate.Parse(kind);
        // LambdaLR: the k-th optimizer.step() (k = 1, 2, ...) runs at base_lr · λ(k − 1).
        for (int step = 1; step <= steps; step++)
            Assert.Equal(TransformersLambda(kind, step - 1, warmup, steps), RiLearningRate.Factor(schedule, warmup, steps, step), 15);
    }

    [Fact]
    public void Schedule_hits_hand_computed_values()
    {
        double[] cosine = [1.0, (1 + Math.Sqrt(0.5)) / 2, 0.5, (1 - Math.Sqrt(0.5)) / 2];
        for (int s = 1; s <= 4; s++) Assert.Equal(cosine[s - 1], RiLearningRate.Factor(RiLrSchedule.Cosine, 0, 4, s), 15);
        double[] linearWarm = [0.0, 1.0, 2.0 / 3, 1.0 / 3];
        for (int s = 1; s <= 4; s++) Assert.Equal(linearWarm[s - 1], RiLearningRate.Factor(RiLrSchedule.Linear, 1, 4, s), 15);
        double[] constantWarm = [0.0, 0.5, 1.0, 1.0];
        for (int s = 1; s <= 4; s++) Assert.Equal(constantWarm[s - 1], RiLearningRate.Factor(RiLrSchedule.Constant, 2, 4, s), 15);
        Assert.Throws<BadInputException>(() => RiLearningRate.Parse("step"));
    }

    /// <summary>torch.nn.utils.clip_grad_norm_ in float64: total = ‖concat(g)‖₂, coef = max/(total + 1e-6) clamped to 1.</summary>
    private static (double Total, double[][] Clipped) ClipReference(float[][] grads, double maxNorm)
    {
        double sq = grads.Sum(g => g.Sum(v => (double)v * v));
        double total = Math.Sqrt(sq);
        double coef = Math.Min(1.0, maxNorm / (total + 1e-6));
        return (total, [.. grads.Select(g => g.Select(v => v * coef).ToArray())]);
    }

    [Theory]
    [InlineData(0.5, 1.0)]
    [InlineData(3.0, 1.0)]
    [InlineData(1e6, 1.0)]
    [InlineData(5e-5, 1e-4)]  // norm ~1e-4: the 1e-6 in the denominator moves the coefficient by ~1%
    public void Grad_clip_matches_clip_grad_norm(double maxNorm, double scale)
    {
        var rng = new Random(4);
        float[][] grads = [TinyModels.Random(rng, 37, 0.3 * scale), TinyModels.Random(rng, 5, scale), TinyModels.Random(rng, 64, 0.05 * scale)];
        var (total, clipped) = ClipReference(grads, maxNorm);
        var copy = grads.Select(g => (float[])g.Clone()).ToArray();
        double norm = ClipOnBackend(copy, maxNorm);
        Assert.Equal(total, norm, 1e-12 * total);
        for (int i = 0; i < grads.Length; i++)
            for (int j = 0; j < grads[i].Length; j++) Assert.Equal(clipped[i][j], copy[i][j], 1e-6 * Math.Abs(clipped[i][j]) + 1e-12);
        if (maxNorm > total) Assert.Equal(grads.SelectMany(g => g), copy.SelectMany(g => g));
        else Assert.Equal(maxNorm * total / (total + 1e-6), Math.Sqrt(copy.Sum(g => g.Sum(v => (double)v * v))), 1e-5 * maxNorm);
    }

    private static double ClipOnBackend(float[][] grads, double maxNorm)
    {
        using var backend = new TaskMerge.Engine.Tensors.Cpu.CpuBackend(1);
        var tensors = grads.Select(g => backend.FromHost(g, g.Length)).ToArray();
        double norm = RiGradClip.Apply(backend, tensors, maxNorm);
        for (int i = 0; i < grads.Length; i++) tensors[i].ToArray().CopyTo(grads[i], 0);
        foreach (var t in tensors) t.Dispose();
        return norm;
    }

    [Fact]
    public void Grad_clip_zero_is_off_and_still_reports_the_norm()
    {
        float[][] grads = [[3f, 0f], [4f]];
        Assert.Equal(5.0, ClipOnBackend(grads, 0), 15);
        Assert.Equal([3f, 0f], grads[0]);
        Assert.Equal([4f], grads[1]);
    }

    [Fact]
    public void Trainer_runs_each_step_at_the_scheduled_rate_and_defaults_are_unchanged()
    {
        var config = RiTrainerTests.Config(Shape);
        var (pre, experts, heads) = RiTrainerTests.Zoo(Shape);
        using var aux = RiAuxImages.InMemory(ClipVisionParityTests.Pixels(12, Shape, 5), 12);
        var o = new RiOptions { LearningRate = 1e-3f, Steps = 6, BatchSize = 4, Seed = 2, Threads = 1 };
        var constant = RiTrainer.Adapt(Cpu, config, pre, experts[0], heads, 0, aux, o);
        Assert.All(constant.LearningRate, lr => Assert.Equal((double)1e-3f, lr));

        var cosine = RiTrainer.Adapt(Cpu, config, pre, experts[0], heads, 0, aux, o with { LrSchedule = RiLrSchedule.Cosine, WarmupSteps = 2 });
        for (int s = 1; s <= 6; s++) Assert.Equal((double)1e-3f * TransformersLambda("cosine", s - 1, 2, 6), cosine.LearningRate[s - 1], 1e-18);
        // Same batches and weights before step 1; the first two steps differ only by the rate.
        Assert.Equal(constant.Loss[0], cosine.Loss[0]);
        Assert.NotEqual(constant.Adapted["visual_projection.weight"], cosine.Adapted["visual_projection.weight"]);

        // Warmup starts at lr 0: one step leaves the expert exactly as it was (AdamW decay is lr·wd).
        var warm = RiTrainer.Adapt(Cpu, config, pre, experts[0], heads, 0, aux, o with { Steps = 1, WarmupSteps = 1 });
        foreach (var (name, v) in experts[0]) Assert.Equal(v, warm.Adapted[name]);
    }

    [Fact]
    public void Trainer_clips_the_global_gradient_norm()
    {
        var config = RiTrainerTests.Config(Shape);
        var (pre, experts, heads) = RiTrainerTests.Zoo(Shape);
        using var aux = RiAuxImages.InMemory(ClipVisionParityTests.Pixels(12, Shape, 5), 12);
        var o = new RiOptions { LearningRate = 1e-3f, Steps = 4, BatchSize = 4, Seed = 2, Threads = 1 };
        var free = RiTrainer.Adapt(Cpu, config, pre, experts[1], heads, 1, aux, o);
        Assert.All(free.GradNorm, g => Assert.True(g > 0 && double.IsFinite(g)));

        var loose = RiTrainer.Adapt(Cpu, config, pre, experts[1], heads, 1, aux, o with { GradClip = 1e6 });
        Assert.Equal(free.Loss, loose.Loss);
        foreach (var (name, v) in free.Adapted) Assert.Equal(v, loose.Adapted[name]);

        // Clipping to ~1e-9 of the norm shrinks gradients below Adam's eps, so the weights barely move.
        var tight = RiTrainer.Adapt(Cpu, config, pre, experts[1], heads, 1, aux, o with { GradClip = 1e-9 * free.GradNorm[0] });
        Assert.Equal(free.GradNorm[0], tight.GradNorm[0]);
        double Moved(RiResult r) => experts[1].Max(kv => kv.Value.Zip(r.Adapted[kv.Key], (a, b) => Math.Abs(a - b)).Max());
        Assert.True(Moved(tight) < 0.1 * Moved(free), $"moved {Moved(tight):E3} with clipping vs {Moved(free):E3} without");
        Assert.Throws<BadInputException>(() => new RiOptions { GradClip = -1 }.Validate());
        Assert.Throws<BadInputException>(() => new RiOptions { Steps = 5, WarmupSteps = 6 }.Validate());
    }
}
