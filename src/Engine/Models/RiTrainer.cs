using TaskMerge.Engine.Eval;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Models;

/// <summary>
/// RI hyper-parameters (shared/docs/methods/ri.md §1.2, §2.2). Defaults follow the spec where it is
/// explicit (α = 1, lr 1e-6, weight decay 1e-4, 2500 steps, batch 128, AdamW with torch's default
/// betas/eps) and the spec's stated assumption where it is open: forward KL(P_teacher ‖ Q_student)
/// (torch <c>kl_div(log q, p, "batchmean")</c>; <see cref="ReverseKl"/> flips it), temperature 1, constant learning rate, no clipping.
/// Teacher embeddings are cached by default (<see cref="CacheTeachers"/>; the result is the same either way).
/// </summary>
internal sealed record RiOptions
{
    /// <summary>Weight α of the interference term (it is divided by N − 1).</summary>
    public double Alpha { get; init; } = 1.0;

    /// <summary>AdamW base learning rate (scaled per step by <see cref="LrSchedule"/>).</summary>
    public float LearningRate { get; init; } = 1e-6f;

    /// <summary>Decoupled weight decay.</summary>
    public float WeightDecay { get; init; } = 1e-4f;

    /// <summary>Adam β1.</summary>
    public float Beta1 { get; init; } = 0.9f;

    /// <summary>Adam β2.</summary>
    public float Beta2 { get; init; } = 0.999f;

    /// <summary>Adam ε.</summary>
    public float Eps { get; init; } = 1e-8f;

    /// <summary>Optimizer steps per expert.</summary>
    public int Steps { get; init; } = 2500;

    /// <summary>Auxiliary images per step.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>
    /// Softmax temperature T applied to teacher and student logits (logits / T); no T² factor on
    /// the loss. 1 = the spec's assumption.
    /// </summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>
    /// False (default, the spec's assumption): KL(P_teacher ‖ Q_student); true: KL(Q_student ‖ P_teacher).
    /// </summary>
    public bool ReverseKl { get; init; }

    /// <summary>Seed of the auxiliary batch order (reshuffled each pass over the data).</summary>
    public int Seed { get; init; }

    /// <summary>Learning-rate schedule after <see cref="WarmupSteps"/> (<see cref="RiLearningRate"/>).</summary>
    public RiLrSchedule LrSchedule { get; init; } = RiLrSchedule.Constant;

    /// <summary>Steps of linear warmup from 0 (0 = none).</summary>
    public int WarmupSteps { get; init; }

    /// <summary>Largest global gradient L2 norm (<see cref="RiGradClip"/>); 0 = no clipping.</summary>
    public double GradClip { get; init; }

    /// <summary>Cache the teachers' embeddings per auxiliary image (<see cref="RiTeacherCache"/>).</summary>
    public bool CacheTeachers { get; init; } = true;

    /// <summary>CPU threads for decoding auxiliary images (the towers run on the backend given to <see cref="RiTrainer.Adapt"/>).</summary>
    public int Threads { get; init; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Throws <see cref="BadInputException"/> for values outside their domain.</summary>
    public void Validate()
    {
        if (!(Alpha >= 0) || double.IsInfinity(Alpha)) throw new BadInputException($"ri: alpha must be ≥ 0, got {Alpha}");
        if (!(LearningRate > 0) || float.IsInfinity(LearningRate)) throw new BadInputException($"ri: lr must be > 0, got {LearningRate}");
        if (!(WeightDecay >= 0) || float.IsInfinity(WeightDecay)) throw new BadInputException($"ri: weight_decay must be ≥ 0, got {WeightDecay}");
        if (Steps < 1) throw new BadInputException($"ri: steps must be ≥ 1, got {Steps}");
        if (BatchSize < 1) throw new BadInputException($"ri: batch_size must be ≥ 1, got {BatchSize}");
        if (!(Temperature > 0) || double.IsInfinity(Temperature)) throw new BadInputException($"ri: temperature must be > 0, got {Temperature}");
        if (WarmupSteps < 0 || WarmupSteps > Steps) throw new BadInputException($"ri: warmup_steps must be in [0, steps = {Steps}], got {WarmupSteps}");
        if (!(GradClip >= 0) || double.IsInfinity(GradClip)) throw new BadInputException($"ri: grad_clip must be ≥ 0 (0 = off), got {GradClip}");
    }
}

/// <summary>Unlabeled auxiliary images, fetched by index as normalised pixels [n, 3, S, S].</summary>
internal interface IRiAuxImages : IDisposable
{
    /// <summary>Images available.</summary>
    int Count { get; }

    /// <summary>Pixels of the images at <paramref name="indices"/>, in that order.</summary>
    float[] Pixels(IReadOnlyList<int> indices);

    /// <summary>A string that changes when the images change (part of the checkpoint fingerprint).</summary>
    string Identity { get; }
}

/// <summary>Auxiliary image sources: in memory, an image-folder tree, or a safetensors <c>pixel_values</c> file.</summary>
internal static class RiAuxImages
{
    /// <summary>Images held in memory: <paramref name="pixels"/> = [count, 3, S, S] flattened.</summary>
    public static IRiAuxImages InMemory(float[] pixels, int count) => new Memory(pixels, count);

    /// <summary>
    /// A directory = image-folder tree (<see cref="ImageFolderDataset"/>, labels ignored); a file =
    /// safetensors with <c>pixel_values</c> [N, 3, S, S] float (labels not needed).
    /// </summary>
    public static IRiAuxImages Open(string path, ImagePreprocessor preprocessor, int parallelism)
    {
        if (Directory.Exists(path)) return new Folder(ImageFolderDataset.Open(path, preprocessor, parallelism));
        if (!File.Exists(path)) throw new BadInputException($"{P(path)}: no such file or directory (aux_data must be an image-folder tree or a .safetensors file with pixel_values)");
        var f = SafetensorsFile.Open(path);
        try
        {
            int size = preprocessor.Size;
            if (!f.TryGet("pixel_values", out var px)) throw new BadInputException($"{P(path)}: tensor \"pixel_values\" not found (expected pixel_values [N, 3, {size}, {size}])");
            if (px.Rank != 4 || px.Shape[1] != 3 || px.Shape[2] != size || px.Shape[3] != size || !px.DType.IsFloat() || px.Shape[0] < 1)
                throw new BadInputException($"{P(path)}: pixel_values is {px.DType.SafetensorsName()} {px.ShapeString}, the model needs float [N ≥ 1, 3, {size}, {size}]");
            int count = checked((int)px.Shape[0]);
            var all = f.ReadFloat32(px);
            f.Dispose();
            return new Memory(all, count);
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    private sealed class Memory(float[] pixels, int count) : IRiAuxImages
    {
        private readonly int _per = pixels.Length / Math.Max(1, count);
        private string? _identity;
        public int Count => count;

        public string Identity => _identity ??= $"pixels {count} sha256 {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(pixels.AsSpan())))}";

        public float[] Pixels(IReadOnlyList<int> indices)
        {
            var o = new float[indices.Count * _per];
            for (int k = 0; k < indices.Count; k++) pixels.AsSpan(indices[k] * _per, _per).CopyTo(o.AsSpan(k * _per, _per));
            return o;
        }

        public void Dispose() { }
    }

    private sealed class Folder(ImageFolderDataset data) : IRiAuxImages
    {
        private string? _identity;
        public int Count => data.Count;

        public string Identity => _identity ??= data.ContentIdentity();

        public float[] Pixels(IReadOnlyList<int> indices)
        {
            var parts = indices.Select(i => data.Batch(i, 1).Pixels).ToArray();
            int per = parts.Length == 0 ? 0 : parts[0].Length;
            var o = new float[parts.Length * per];
            for (int k = 0; k < parts.Length; k++) parts[k].CopyTo(o, k * per);
            return o;
        }

        public void Dispose() => data.Dispose();
    }
}

/// <summary>The result of one expert's RI adaptation.</summary>
internal sealed class RiResult
{
    /// <summary>Adapted weights θ0 + τ* by HF name (float32).</summary>
    public required Dictionary<string, float[]> Adapted { get; init; }

    /// <summary>Total loss L1 + α·L2 per step (before that step's update).</summary>
    public required double[] Loss { get; init; }

    /// <summary>Task-preservation term L1 per step.</summary>
    public required double[] TaskLoss { get; init; }

    /// <summary>Interference term L2 = mean over j ≠ i of the KL (without α) per step.</summary>
    public required double[] InterferenceLoss { get; init; }

    /// <summary>Learning rate of each step (the schedule's).</summary>
    public required double[] LearningRate { get; init; }

    /// <summary>Global gradient L2 norm of each step, before clipping.</summary>
    public required double[] GradNorm { get; init; }

    /// <summary>Steps restored from a checkpoint (0: started fresh; the step count: nothing was recomputed).</summary>
    public int ResumedSteps { get; init; }

    /// <summary>Images run through the two teacher towers together (fewer than 2 × steps × batch when cached).</summary>
    public long TeacherImagesForwarded { get; init; }
}

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
