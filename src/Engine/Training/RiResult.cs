namespace TaskMerge.Engine.Training;

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
