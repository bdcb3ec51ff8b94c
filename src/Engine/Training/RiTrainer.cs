using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Training;

/// <summary>
/// RI adaptation of one expert on an <see cref="IBackend"/> (ri.md §1.2, §6 <c>ri_adapt</c>): the
/// student θ0 + τ starts at the expert θ0 + τᵢ (float32 master weights) and AdamW minimises, over
/// unlabeled auxiliary images, L1 + α/(N−1)·Σ_{j≠i} KL(hⱼ(f(θ0)(x)) ‖ hⱼ(f(θ0+τ)(x))) with
/// L1 = KL(hᵢ(f(θ0+τᵢ)(x)) ‖ hᵢ(f(θ0+τ)(x))). Teacher embeddings come from the frozen θ0 and θᵢ
/// towers (forward only, same backend), or from <see cref="RiTeacherCache"/>s for images seen before. Heads are [Cⱼ, E] matrices already holding
/// the logit scale (<c>h(z) = softmax(normalize(z)·Wᵀ)</c>); the head KL and its gradient run on the
/// host over the [B, E] embeddings. Backend memory: three float32 copies of the tower plus gradients
/// and two Adam moments (6 × model size), one batch of student activations
/// (<see cref="ClipVisionActivations"/>), one teacher workspace, and the host teacher caches.
/// Each step's learning rate follows <see cref="RiOptions.LrSchedule"/>, gradients are clipped to
/// <see cref="RiOptions.GradClip"/>, and a <see cref="RiCheckpointStore"/> makes the run resumable
/// with the same bytes as an uninterrupted one.
/// </summary>
internal static class RiTrainer
{
    /// <summary>
    /// Adapts expert <paramref name="expertIndex"/> of <paramref name="heads"/>.Count tasks (N ≥ 2)
    /// on <paramref name="backend"/>. <paramref name="hooks"/> (optional) adds checkpoints, a shared
    /// pretrained-embedding cache, per-step reports and cancellation.
    /// </summary>
    public static RiResult Adapt(IBackend backend, ClipVisionConfig config, IReadOnlyDictionary<string, float[]> pretrained,
        IReadOnlyDictionary<string, float[]> expert, IReadOnlyList<float[]> heads, int expertIndex, IRiAuxImages aux,
        RiOptions options, RiRunHooks? hooks = null)
    {
        options.Validate();
        int n = heads.Count, e = config.ProjectionDim;
        if (n < 2) throw new BadInputException($"ri: needs at least 2 tasks (heads), got {n}");
        if ((uint)expertIndex >= (uint)n) throw new ArgumentOutOfRangeException(nameof(expertIndex));
        if (aux.Count < 1) throw new BadInputException("ri: the auxiliary data holds no images");
        var scaled = ScaledHeads(heads, e, options.Temperature);

        using var pre = new ClipVisionTraining(backend, config, pretrained);
        using var teacher = new ClipVisionTraining(backend, config, expert);
        using var student = new ClipVisionTraining(backend, config, expert);
        var settings = new Optim.AdamSettings(options.LearningRate, options.Beta1, options.Beta2, options.Eps, options.WeightDecay, Decoupled: true);
        double beta = options.Alpha / (n - 1);

        var curves = new RiCurves(options.Steps);
        var checkpoint = hooks?.Checkpoints?.Open(expertIndex, RiFingerprint.Of(config, options, pretrained, expert, heads, expertIndex, aux.Identity));
        int resumed = 0;
        if (checkpoint is not null)
        {
            var restored = student.ParametersToHost();
            var (m, v) = student.MomentsToHost();
            resumed = checkpoint.Restore(expert, restored, m, v, curves, options.Steps);
            if (resumed > 0) student.Load(restored, m, v);
        }
        var order = new BatchOrder(aux.Count, options.Seed);
        order.Next(resumed * options.BatchSize);
        bool revisits = (long)options.Steps * options.BatchSize > aux.Count;
        var preCache = hooks?.PretrainedCache ?? new RiTeacherCache(aux.Count, e, options.CacheTeachers && revisits);
        var expertCache = new RiTeacherCache(aux.Count, e, options.CacheTeachers && revisits);
        long preForwardsBefore = preCache.ImagesForwarded;
        for (int step = resumed + 1; step <= options.Steps; step++)
        {
            hooks?.Cancellation.ThrowIfCancellationRequested();
            int batch = options.BatchSize;
            var indices = order.Next(batch);
            using var pixels = Pixels(backend, config, aux.Pixels(indices), batch);
            var targets = Teachers(preCache.Embeddings(indices, () => backend.DetachToHost(pre.Embed(pixels))),
                expertCache.Embeddings(indices, () => backend.DetachToHost(teacher.Embed(pixels))), batch, e, scaled, expertIndex);
            var act = student.Forward(pixels);
            var z = act.Embeds.ToArray();
            var dz = new float[batch * e];
            double l1 = 0, l2 = 0;
            for (int j = 0; j < n; j++)
            {
                int classes = scaled[j].Length / e;
                if (j == expertIndex) l1 = HeadKl.LossAndGrad(z, batch, e, scaled[j], classes, targets[j], 1.0, dz, options.ReverseKl);
                else l2 += HeadKl.LossAndGrad(z, batch, e, scaled[j], classes, targets[j], beta, dz, options.ReverseKl);
            }
            using (var dzT = backend.FromHost(dz, batch, e))
            {
                student.ZeroGradients();
                student.Backward(act, dzT);
            }
            double gradNorm = RiGradClip.Apply(backend, student.Gradients.Values, options.GradClip);
            double lr = options.LearningRate * RiLearningRate.Factor(options.LrSchedule, options.WarmupSteps, options.Steps, step);
            student.OptimizerStep(step, settings with { Lr = (float)lr });
            curves.Record(step, l1 + l2, l1, beta > 0 ? l2 / beta / (n - 1) : 0, lr, gradNorm);
            if (checkpoint is not null && checkpoint.IsDue(step, options.Steps))
            {
                var (m, v) = student.MomentsToHost();
                checkpoint.AfterStep(step, options.Steps, student.ParametersToHost(), m, v, curves);
            }
            hooks?.OnStep?.Invoke(new RiStepInfo(expertIndex, step, options.Steps, l1 + l2, lr));
        }
        return new RiResult
        {
            Adapted = student.ParametersToHost(), Loss = curves.Loss, TaskLoss = curves.TaskLoss, InterferenceLoss = curves.InterferenceLoss,
            LearningRate = curves.LearningRate, GradNorm = curves.GradNorm, ResumedSteps = resumed,
            TeacherImagesForwarded = preCache.ImagesForwarded - preForwardsBefore + expertCache.ImagesForwarded,
        };
    }

    /// <summary>
    /// The RI terms of <paramref name="candidate"/> on <paramref name="pixels"/> without gradients, on
    /// <paramref name="backend"/>: L1 = KL(hᵢ(f(expert)) ‖ hᵢ(f(candidate))) and
    /// L2 = mean_{j≠i} KL(hⱼ(f(θ0)) ‖ hⱼ(f(candidate))) (temperature 1). L2 is the interference that
    /// τ = candidate − θ0 causes on the other tasks' heads.
    /// </summary>
    public static (double TaskKl, double InterferenceKl) Evaluate(IBackend backend, ClipVisionConfig config, IReadOnlyDictionary<string, float[]> pretrained,
        IReadOnlyDictionary<string, float[]> expert, IReadOnlyDictionary<string, float[]> candidate, IReadOnlyList<float[]> heads,
        int expertIndex, float[] pixels, int batch)
    {
        int n = heads.Count, e = config.ProjectionDim;
        using var x = Pixels(backend, config, (float[])pixels.Clone(), batch);
        float[] Embeds(IReadOnlyDictionary<string, float[]> weights)
        {
            using var tower = new ClipVisionTraining(backend, config, weights);
            return backend.DetachToHost(tower.Embed(x));
        }
        var zPre = Embeds(pretrained);
        var zExp = Embeds(expert);
        var zCand = Embeds(candidate);
        var targets = Teachers(zPre, zExp, batch, e, heads, expertIndex);
        double l1 = 0, l2 = 0;
        var scratch = new float[batch * e];
        for (int j = 0; j < n; j++)
        {
            double kl = HeadKl.LossAndGrad(zCand, batch, e, heads[j], heads[j].Length / e, targets[j], 1.0, scratch);
            if (j == expertIndex) l1 = kl;
            else l2 += kl / (n - 1);
        }
        return (l1, l2);
    }

    /// <summary>Normalised pixels [B, C, S, S] as a tensor (the CPU backend adopts <paramref name="values"/>).</summary>
    private static Tensor Pixels(IBackend backend, ClipVisionConfig c, float[] values, int batch) =>
        backend.FromHost(values, batch, c.NumChannels, c.ImageSize, c.ImageSize);

    private static float[][] Teachers(float[] zPre, float[] zExpert, int batch, int e, IReadOnlyList<float[]> heads, int expertIndex) =>
        [.. heads.Select((h, j) => HeadKl.Probabilities(j == expertIndex ? zExpert : zPre, batch, e, h, h.Length / e))];

    private static float[][] ScaledHeads(IReadOnlyList<float[]> heads, int e, double temperature)
    {
        var o = new float[heads.Count][];
        for (int j = 0; j < heads.Count; j++)
        {
            if (heads[j].Length == 0 || heads[j].Length % e != 0)
                throw new BadInputException($"ri: head {j} has {heads[j].Length} values, expected C × {e} (the projection dim)");
            o[j] = temperature == 1.0 ? heads[j] : [.. heads[j].Select(v => (float)(v / temperature))];
        }
        return o;
    }

    /// <summary>Seeded shuffled index stream: a fresh permutation of [0, count) per pass, batches may span passes.</summary>
    private sealed class BatchOrder(int count, int seed)
    {
        private readonly Random _rng = new(seed);
        private int[] _perm = [];
        private int _pos;

        public int[] Next(int batch)
        {
            var o = new int[batch];
            for (int k = 0; k < batch; k++)
            {
                if (_pos == _perm.Length)
                {
                    _perm = [.. Enumerable.Range(0, count)];
                    _rng.Shuffle(_perm);
                    _pos = 0;
                }
                o[k] = _perm[_pos++];
            }
            return o;
        }
    }
}
