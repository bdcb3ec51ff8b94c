namespace TaskMerge.Engine.Training;

/// <summary>What one RI optimizer step reports: expert, step (1-based) of steps, total loss and the learning rate it ran at.</summary>
internal readonly record struct RiStepInfo(int Expert, int Step, int Steps, double Loss, double LearningRate);

/// <summary>Optional services of an RI adaptation run (<see cref="RiTrainer.Adapt"/>); every member may be left out.</summary>
internal sealed class RiRunHooks
{
    /// <summary>Where the run checkpoints and resumes (null: no checkpoints).</summary>
    public RiCheckpointStore? Checkpoints { get; init; }

    /// <summary>
    /// The pretrained tower's embedding cache, shared by every expert of one merge (they use the same
    /// θ0, aux images and batch order); null: the run keeps its own.
    /// </summary>
    public RiTeacherCache? PretrainedCache { get; init; }

    /// <summary>Called after every optimizer step (and after its checkpoint, when one is due).</summary>
    public Action<RiStepInfo>? OnStep { get; init; }

    /// <summary>Checked before every step; a cancelled run throws <see cref="OperationCanceledException"/>, keeping its last checkpoint.</summary>
    public CancellationToken Cancellation { get; init; }
}

/// <summary>Per-step curves of one RI run, indexed by step − 1.</summary>
internal sealed class RiCurves
{
    /// <summary>Empty curves for <paramref name="steps"/> steps.</summary>
    public RiCurves(int steps)
    {
        Loss = new double[steps];
        TaskLoss = new double[steps];
        InterferenceLoss = new double[steps];
        LearningRate = new double[steps];
        GradNorm = new double[steps];
    }

    /// <summary>L1 + α·L2.</summary>
    public double[] Loss { get; }

    /// <summary>L1.</summary>
    public double[] TaskLoss { get; }

    /// <summary>L2 (mean KL over the other heads, without α).</summary>
    public double[] InterferenceLoss { get; }

    /// <summary>The learning rate the step ran at.</summary>
    public double[] LearningRate { get; }

    /// <summary>The global gradient L2 norm before clipping.</summary>
    public double[] GradNorm { get; }

    /// <summary>The curves in a fixed order with their report / checkpoint names.</summary>
    public IEnumerable<(string Name, double[] Values)> All =>
    [
        ("loss", Loss), ("task_loss", TaskLoss), ("interference_loss", InterferenceLoss), ("lr", LearningRate), ("grad_norm", GradNorm),
    ];

    /// <summary>Stores step <paramref name="step"/>'s values.</summary>
    public void Record(int step, double loss, double taskLoss, double interferenceLoss, double learningRate, double gradNorm)
    {
        int i = step - 1;
        (Loss[i], TaskLoss[i], InterferenceLoss[i], LearningRate[i], GradNorm[i]) = (loss, taskLoss, interferenceLoss, learningRate, gradNorm);
    }

    /// <summary>Zeroes every curve.</summary>
    public void Clear()
    {
        foreach (var (_, v) in All) Array.Clear(v);
    }
}
