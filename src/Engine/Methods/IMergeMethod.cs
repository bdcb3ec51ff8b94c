using TaskMerge.Engine.IO;
using TaskMerge.Engine.Merge;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// A merge method: declares its parameters and merges one tensor group at a time.
/// Methods are written once against <see cref="IBackend"/> and never ask which device they run on.
/// </summary>
public interface IMergeMethod
{
    /// <summary>The <c>merge_method</c> name.</summary>
    string Name { get; }

    /// <summary>One-line description for help and the README table.</summary>
    string Description { get; }

    /// <summary>Every parameter the method reads (global and per-model).</summary>
    IReadOnlyList<ParameterDef> Parameters { get; }

    /// <summary>True for task-vector methods: a base model is required and experts equal to it are dropped.</summary>
    bool UsesTaskVectors { get; }

    /// <summary>
    /// True when a <c>base_model</c> that is also listed under <c>models:</c> is the base only, not one more
    /// expert (the base's role in mergekit's slerp family and karcher, where a base is optional).
    /// </summary>
    bool DropsBaseFromModels => UsesTaskVectors;

    /// <summary>
    /// Runs once before tensors are merged, for methods that need a pass over the whole model
    /// (e.g. AWD's Gram accumulation). The default does nothing.
    /// </summary>
    void Prepare(MergeContext context) { }

    /// <summary>Merges one float tensor; returns a new tensor on <see cref="TensorGroup.Backend"/> (the caller disposes it).</summary>
    Tensor Merge(TensorGroup group);
}

/// <summary>One expert's tensor in a group.</summary>
/// <param name="Model">Index into the config's expert list (the order of <c>models:</c> minus the base).</param>
/// <param name="Values">The expert's values (τ = 0 where the expert lacks the tensor).</param>
public sealed record ExpertTensor(int Model, Tensor Values);

/// <summary>What a method sees of one output tensor.</summary>
public sealed class TensorGroup
{
    /// <summary>Tensor name.</summary>
    public required string Name { get; init; }

    /// <summary>Layer depth t ∈ [0,1] for gradient parameters.</summary>
    public required double Depth { get; init; }

    /// <summary>The base model's tensor (null only for methods without task vectors and no base).</summary>
    public required Tensor? Base { get; init; }

    /// <summary>The experts' tensors, in config order.</summary>
    public required IReadOnlyList<ExpertTensor> Experts { get; init; }

    /// <summary>Backend holding every tensor of the group.</summary>
    public required IBackend Backend { get; init; }

    /// <summary>Resolved parameters.</summary>
    public required MergeParameters Parameters { get; init; }

    /// <summary>Random seed from <c>--random-seed</c> (0 when not given).</summary>
    public ulong Seed { get; init; }

    /// <summary>Receives per-tensor diagnostics for <c>merge_report.json</c>.</summary>
    public required IDictionary<string, object> Diagnostics { get; init; }

    /// <summary>The run's tensors merged ahead by <see cref="IMergeMethod.Prepare"/> (<see cref="MergeContext.Prepared"/>); empty when Prepare did not run.</summary>
    public PreparedTensors Prepared { get; init; } = new();

    /// <summary>A float parameter for this tensor (per-model when <paramref name="model"/> ≥ 0).</summary>
    public double Float(string name, int model = -1) => Parameters.Float(name, Name, Depth, model);

    /// <summary>A boolean parameter for this tensor.</summary>
    public bool Bool(string name) => Parameters.Bool(name, Name, Depth);

    /// <summary>The tensor shape.</summary>
    public ReadOnlySpan<int> Shape => (Base ?? Experts[0].Values).Shape;
}

/// <summary>What <see cref="IMergeMethod.Prepare"/> may read: any float tensor of any model, on demand.</summary>
public sealed class MergeContext
{
    /// <summary>Names and shapes of the float tensors that will be merged, in output order.</summary>
    public required IReadOnlyList<(string Name, int[] Shape)> Tensors { get; init; }

    /// <summary>Number of experts.</summary>
    public required int ExpertCount { get; init; }

    /// <summary>Loads tensor <c>name</c> of expert <c>model</c> (−1: the base) onto the backend; caller disposes.</summary>
    public required Func<string, int, Tensor> Load { get; init; }

    /// <summary>Backend to compute on.</summary>
    public required IBackend Backend { get; init; }

    /// <summary>Resolved parameters.</summary>
    public required MergeParameters Parameters { get; init; }

    /// <summary>Random seed.</summary>
    public ulong Seed { get; init; }

    /// <summary>Model-level diagnostics for <c>merge_report.json</c>.</summary>
    public required IDictionary<string, object> Report { get; init; }

    /// <summary>The base (reference) model's tensor headers (names, shapes, dtypes) and <c>config.json</c>, when the caller has them; else null.</summary>
    public ModelSource? Reference { get; init; }

    /// <summary>The directory of the YAML config, against which file parameters (e.g. RI's <c>head</c>, <c>aux_data</c>) resolve like model paths; null when there is none.</summary>
    public string? ConfigDirectory { get; init; }

    /// <summary>The run's output directory, for work files a method keeps beside its output (e.g. RI's checkpoints); null when there is none.</summary>
    public string? OutputDirectory { get; init; }

    /// <summary>Where a long <see cref="IMergeMethod.Prepare"/> reports progress, notes and warnings.</summary>
    public IMergeProgress Progress { get; init; } = NullProgress.Instance;

    /// <summary>Where Prepare leaves tensors it merged ahead for this run's <see cref="IMergeMethod.Merge"/> calls (<see cref="TensorGroup.Prepared"/>).</summary>
    public PreparedTensors Prepared { get; init; } = new();
}
