namespace TaskMerge.Engine.Merge;

/// <summary>Run options of <c>taskmerge merge</c> (the CLI flags).</summary>
public sealed record MergeOptions
{
    /// <summary>Largest output shard in bytes (<c>--out-shard-size</c>, default 5 GB as mergekit's "5B").</summary>
    public long OutShardBytes { get; init; } = 5_000_000_000;

    /// <summary><c>--random-seed</c>; null draws no seed and uses 0.</summary>
    public ulong? RandomSeed { get; init; }

    /// <summary><c>--allow-crimes</c>: a shape mismatch skips that expert's tensor instead of failing.</summary>
    public bool AllowCrimes { get; init; }

    /// <summary><c>-i/--tensor-intersection</c>: drop tensors some expert lacks instead of using τ = 0.</summary>
    public bool TensorIntersection { get; init; }

    /// <summary>
    /// <c>--allow-nonfinite</c>: a NaN/±Inf in a tensor a method reads propagates as the method's math makes it;
    /// by default it is bad input naming the model, tensor and index.
    /// </summary>
    public bool AllowNonFinite { get; init; }

    /// <summary>Copy tokenizer and preprocessor files from the base model directory (mergekit's default).</summary>
    public bool CopyTokenizer { get; init; } = true;

    /// <summary>Write the model card <c>README.md</c> (mergekit's default; <c>--no-model-card</c> turns it off).</summary>
    public bool WriteModelCard { get; init; } = true;

    /// <summary><c>--overwrite</c>: replace a non-empty OUT_DIR that does not hold a previous TaskMerge output.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Where hub ids (<c>org/name[@revision]</c>) are looked up and downloaded; null reads the environment (<see cref="IO.HubSettings.FromEnvironment"/>).</summary>
    public IO.HubSettings? Hub { get; init; }

    /// <summary>Tensors loaded ahead of the one being merged.</summary>
    public int Prefetch { get; init; } = 2;
}

/// <summary>Receives progress of a merge; the CLI draws bars or prints lines from it.</summary>
public interface IMergeProgress
{
    /// <summary>A stage starts with <paramref name="total"/> work items.</summary>
    void StageStarted(string stage, long total);

    /// <summary>One item of the current stage is done, having moved <paramref name="bytes"/> bytes.</summary>
    void Advance(string item, long bytes);

    /// <summary>A non-fatal problem the user should see.</summary>
    void Warn(string message);

    /// <summary>
    /// Step <paramref name="step"/> of <paramref name="steps"/> of an iterative stage (e.g. RI adapting
    /// one expert) finished with <paramref name="loss"/>, at <paramref name="itemsPerSecond"/> since the stage started.
    /// </summary>
    void TrainingStep(string stage, int step, int steps, double loss, double itemsPerSecond) { }

    /// <summary>Something the user may want to know that is not a problem (e.g. a run resumed from a checkpoint).</summary>
    void Note(string message) { }
}

/// <summary>Progress sink that discards everything.</summary>
public sealed class NullProgress : IMergeProgress
{
    /// <summary>The shared instance.</summary>
    public static NullProgress Instance { get; } = new();

    /// <inheritdoc />
    public void StageStarted(string stage, long total) { }

    /// <inheritdoc />
    public void Advance(string item, long bytes) { }

    /// <inheritdoc />
    public void Warn(string message) { }
}
