namespace TaskMerge.Engine.Training;

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
