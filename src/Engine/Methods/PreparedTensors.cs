using System.Collections.Concurrent;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// Merged tensors that a method's <see cref="IMergeMethod.Prepare"/> computed ahead (e.g. WUDI's fused
/// q/k/v blocks), held for the <see cref="IMergeMethod.Merge"/> calls of the same run: one store per
/// run, shared by its <see cref="MergeContext"/> and every <see cref="TensorGroup"/>, so a method keeps
/// no results between calls. Safe for concurrent use.
/// </summary>
public sealed class PreparedTensors
{
    private readonly ConcurrentDictionary<string, PreparedTensor> _tensors = new(StringComparer.Ordinal);

    /// <summary>Stores the merged values of tensor <paramref name="name"/> (replacing any earlier ones).</summary>
    public void Add(string name, PreparedTensor tensor) => _tensors[name] = tensor;

    /// <summary>Removes and returns the prepared tensor <paramref name="name"/>, or null when there is none.</summary>
    public PreparedTensor? Take(string name) => _tensors.TryRemove(name, out var t) ? t : null;
}

/// <summary>One prepared tensor.</summary>
/// <param name="Values">Its merged values (host, float32, the tensor's length).</param>
/// <param name="Diagnostics">Per-tensor diagnostics for <c>merge_report.json</c>.</param>
/// <param name="ExpertCount">Experts it was merged from (a group with fewer experts cannot use it).</param>
public sealed record PreparedTensor(float[] Values, IReadOnlyDictionary<string, object> Diagnostics, int ExpertCount);
