using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Merge;

/// <summary>
/// The missing-tensor policy: an expert that lacks a few of the reference model's floating-point
/// tensors takes part with τ = 0 there (one warning per tensor); one that lacks more than
/// <see cref="MaxMissingFraction"/> of them is not the same model (corrupted names, a wrong file) and is
/// bad input, or a warning under <c>--allow-crimes</c>.
/// </summary>
public static class MissingTensors
{
    /// <summary>Largest fraction of the reference's float tensors an expert may lack.</summary>
    public const double MaxMissingFraction = 0.5;

    /// <summary>Throws (or warns under <paramref name="allowCrimes"/>) for every expert lacking most float tensors of <paramref name="reference"/>.</summary>
    public static void Check(ModelSource reference, IReadOnlyList<ModelSource> experts, bool allowCrimes, ICollection<string> warnings)
    {
        var floats = reference.Tensors.Where(t => t.DType.IsFloat()).Select(t => t.Name).ToArray();
        if (floats.Length == 0) return;
        foreach (var e in experts)
        {
            if (ReferenceEquals(e, reference)) continue;
            var missing = floats.Where(n => !e.Contains(n)).ToArray();
            if (missing.Length <= MaxMissingFraction * floats.Length) continue;
            string msg = $"{e.Path}: lacks {missing.Length} of the {floats.Length} floating-point tensors of {reference.Path} " +
                         $"(first: {missing[0]}); its tensor names do not match (corrupted names or another model?)";
            if (!allowCrimes) throw new BadInputException(msg + "; more than half missing is refused (--allow-crimes merges it anyway)");
            warnings.Add(msg + "; merged anyway (--allow-crimes)");
        }
    }
}
