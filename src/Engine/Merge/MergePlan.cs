using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Merge;

/// <summary>How one output tensor is produced.</summary>
public enum TensorAction
{
    /// <summary>Merged by the method.</summary>
    Merge,
    /// <summary>Copied from the base model unchanged (non-float tensors, or no usable expert).</summary>
    CopyBase,
}

/// <summary>One output tensor of the plan.</summary>
/// <param name="Name">Tensor name (as in the base model).</param>
/// <param name="Shape">Shape (as in the base model).</param>
/// <param name="SourceDType">The base model's stored dtype.</param>
/// <param name="OutDType">Dtype written.</param>
/// <param name="Action">Merge or copy.</param>
/// <param name="Experts">Expert indices whose own tensor is read.</param>
/// <param name="Missing">Expert indices that lack the tensor and take part with τ = 0 (the base values).</param>
/// <param name="Depth">Layer depth for gradient parameters.</param>
public sealed record PlannedTensor(string Name, int[] Shape, DType SourceDType, DType OutDType, TensorAction Action, int[] Experts, int[] Missing, double Depth)
{
    /// <summary>Where a <c>slices:</c>/<c>modules:</c> tensor is read from; null when every model has it under <see cref="Name"/>.</summary>
    public TensorSources? Sources { get; init; }
}

/// <summary>The inputs of one output tensor of a slice: which model holds it under which name, and the slice's parameters.</summary>
/// <param name="Base">The base model's tensor (null when the method takes none for this slice).</param>
/// <param name="Experts">The other inputs in source order; <see cref="PlannedTensor.Experts"/> indexes them.</param>
/// <param name="Parameters">Parameters resolved with the slice's and module's scopes.</param>
public sealed record TensorSources((ModelSource Model, string Name)? Base, IReadOnlyList<(ModelSource Model, string Name)> Experts, MergeParameters Parameters)
{
    /// <summary>The input a copied tensor comes from: the base, else the first source.</summary>
    public (ModelSource Model, string Name) First => Base ?? Experts[0];
}

/// <summary>
/// The validated plan of a merge, built from the config and safetensors headers only: every error a
/// user can cause (unknown method or parameter value, missing file, corrupt header, shape mismatch)
/// is raised here, before any tensor data is read.
/// </summary>
public sealed partial class MergePlan : IDisposable
{
    private MergePlan() { }

    /// <summary>The parsed config.</summary>
    public required MergeConfig Config { get; init; }

    /// <summary>The method.</summary>
    public required IMergeMethod Method { get; init; }

    /// <summary>Resolved parameters.</summary>
    public required MergeParameters Parameters { get; init; }

    /// <summary>The reference model: the base model, or the first model for methods without task vectors and no base.</summary>
    public required ModelSource Reference { get; init; }

    /// <summary>True when <see cref="Reference"/> is a real base model (θ₀).</summary>
    public required bool HasBase { get; init; }

    /// <summary>The experts in config order (the base excluded for task-vector methods).</summary>
    public required IReadOnlyList<ModelSource> Experts { get; init; }

    /// <summary>Config entries of <see cref="Experts"/>.</summary>
    public required IReadOnlyList<ModelEntry> ExpertEntries { get; init; }

    /// <summary>Output tensors in base order.</summary>
    public required IReadOnlyList<PlannedTensor> Tensors { get; init; }

    /// <summary>Compute rounding dtype from <c>dtype</c> (inputs are rounded to it on load; math is float32).</summary>
    public required DType ComputeDType { get; init; }

    /// <summary>Dtype the float tensors are stored in: <c>out_dtype</c>, else <c>dtype</c>, else null to keep each base tensor's dtype.</summary>
    public required DType? OutDType { get; init; }

    /// <summary>Warnings found while planning.</summary>
    public required IReadOnlyList<string> Warnings { get; init; }

    /// <summary>Tensors skipped per expert because of a shape mismatch under <c>--allow-crimes</c>.</summary>
    public required IReadOnlyList<string> SkippedForShape { get; init; }

    /// <summary>Bytes of tensor data the merge will read.</summary>
    public required long BytesToRead { get; init; }

    /// <summary>Run options.</summary>
    public required MergeOptions Options { get; init; }

    /// <summary>Changes to the written <c>config.json</c> (a frankenmerge's layer count and per-layer lists); null for none.</summary>
    public Action<System.Text.Json.Nodes.JsonObject>? ConfigEdit { get; init; }

    /// <summary>
    /// Rough peak of host memory for tensor data: the largest group (base + every expert, float32)
    /// held by each pipeline stage (loader queue, compute, writer queue), plus the method's working
    /// copies of it (one per expert and two outputs). Whole-model methods (AWD's Adam, WUDI's
    /// fused q/k/v cache) add their own state on top.
    /// </summary>
    public long EstimatedPeakBytes
    {
        get
        {
            long largest = Tensors.Where(t => t.Action == TensorAction.Merge).Select(t => t.Shape.Aggregate(1L, (a, d) => a * d)).DefaultIfEmpty(0).Max();
            long group = largest * 4 * (Experts.Count + 1);
            return group * (Options.Prefetch * 2 + 1) + largest * 4 * (Experts.Count + 2);
        }
    }

    /// <summary>Builds the plan; opens every model (headers only) and validates everything.</summary>
    public static MergePlan Create(MergeConfig config, MergeOptions options)
    {
        foreach (var (path, key) in config.Models.Select(m => (m.ResolvedPath, "model")).Append((config.BaseModelPath ?? "", "base_model")))
            if (path.Contains('\0')) throw new BadInputException($"{config.Path}: {key} {IOText.Q(path)} contains a NUL character");
        var method = MethodRegistry.Create(config.MergeMethod);
        if (config.Modules is not null) return CreateSliced(config, options, method);
        var warnings = new List<string>();
        foreach (var k in config.IgnoredKeys) warnings.Add($"{config.Path}: key '{k}' is ignored by taskmerge");

        DType compute = config.DType is null ? DType.F32 : ParseFloatDType(config.DType, config.Path, "dtype");
        if (compute == DType.F64) throw new BadInputException($"{config.Path}: dtype float64 is not supported for compute; use float32");
        // As mergekit: tensors are stored as computed in `dtype` unless `out_dtype` says otherwise.
        DType? outDType = config.OutDType is not null ? ParseFloatDType(config.OutDType, config.Path, "out_dtype")
            : config.DType is not null ? compute : null;

        var opened = new List<IDisposable>();
        try
        {
            var hub = options.Hub ?? HubSettings.FromEnvironment();
            ModelSource Open(string written, string path, string as_)
            {
                var m = ModelSource.Open(HuggingFaceHub.Locate(written, path, hub, as_));
                opened.Add(m);
                return m;
            }

            ModelSource? baseModel = config.BaseModelPath is null ? null : Open(config.BaseModel!, config.BaseModelPath, "base_model");
            if (method.UsesTaskVectors && baseModel is null)
                throw new BadInputException($"{config.Path}: merge_method {method.Name} needs a base_model");

            var entries = config.Models
                .Where(m => !(method.DropsBaseFromModels && config.BaseModelPath is not null && SamePath(m.ResolvedPath, config.BaseModelPath)))
                .ToList();
            if (entries.Count == 0) throw new BadInputException($"{config.Path}: no models to merge besides the base model");
            var experts = entries.Select(e => Open(e.Model, e.ResolvedPath, "model")).ToList();
            var reference = baseModel ?? experts[0];
            ArchitectureCheck.Run(reference, experts, options.AllowCrimes, warnings);

            var parameters = new MergeParameters(method.Parameters, config.Parameters, entries.Select(e => e.Parameters).ToList(), warnings);
            var depth = new LayerDepth(reference.Tensors.Select(t => t.Name));
            var planned = new List<PlannedTensor>();
            var skipped = new List<string>();
            long bytes = 0;
            var refNames = new HashSet<string>(reference.Tensors.Select(t => t.Name));

            MissingTensors.Check(reference, experts, options.AllowCrimes, warnings);
            foreach (var info in reference.Tensors)
            {
                int[] shape = ToIntShape(info, reference.Path);
                bool isFloat = info.DType.IsFloat();
                var present = new List<int>();
                var missing = new List<int>();
                long presentBytes = 0;
                bool dropped = false;
                for (int e = 0; e < experts.Count; e++)
                {
                    if (!experts[e].TryGet(info.Name, out var ei))
                    {
                        if (options.TensorIntersection) { dropped = true; break; }
                        if (isFloat) warnings.Add($"{experts[e].Path}: tensor {info.Name} is missing; treated as unchanged (τ = 0)");
                        if (method.UsesTaskVectors) missing.Add(e);
                        continue;
                    }
                    if (!ei.Shape.SequenceEqual(info.Shape))
                    {
                        string msg = $"{experts[e].Path}: tensor {info.Name} has shape [{string.Join(",", ei.Shape)}] but {reference.Path} has [{string.Join(",", info.Shape)}]";
                        if (!options.AllowCrimes) throw new BadInputException(msg + " (use --allow-crimes to skip it)");
                        warnings.Add(msg + "; skipped (--allow-crimes)");
                        skipped.Add($"{entries[e].Model}:{info.Name}");
                        continue;
                    }
                    if (isFloat && !ei.DType.IsFloat())
                        throw new BadInputException($"{experts[e].Path}: tensor {info.Name} is {ei.DType.SafetensorsName()} but the base has {info.DType.SafetensorsName()}");
                    present.Add(e);
                    presentBytes += ei.ByteLength;
                }
                if (dropped) { warnings.Add($"tensor {info.Name} is not in every model; dropped (--tensor-intersection)"); continue; }
                bool merge = isFloat && (present.Count > 0 || (baseModel is not null && missing.Count > 0));
                var outType = isFloat ? outDType ?? info.DType : info.DType;
                planned.Add(new PlannedTensor(info.Name, shape, info.DType, outType, merge ? TensorAction.Merge : TensorAction.CopyBase,
                    present.ToArray(), missing.ToArray(), depth.Of(info.Name)));
                if (baseModel is not null || !merge) bytes += info.ByteLength;
                if (merge) bytes += presentBytes;
            }
            foreach (var e in experts)
            {
                int extra = e.Tensors.Count(t => !refNames.Contains(t.Name));
                if (extra > 0) warnings.Add($"{e.Path}: {extra} tensor(s) not in {reference.Path} are ignored");
            }
            if (planned.Count == 0) throw new BadInputException($"{reference.Path}: no tensors to write");

            return new MergePlan
            {
                Config = config, Method = method, Parameters = parameters, Reference = reference, HasBase = baseModel is not null,
                Experts = experts, ExpertEntries = entries, Tensors = planned, ComputeDType = compute, OutDType = outDType,
                Warnings = warnings, SkippedForShape = skipped, BytesToRead = bytes, Options = options,
            };
        }
        catch
        {
            foreach (var d in opened) d.Dispose();
            throw;
        }
    }

    private static bool SamePath(string a, string b) =>
        string.Equals(Path.GetFullPath(a).TrimEnd('/'), Path.GetFullPath(b).TrimEnd('/'), StringComparison.Ordinal);

    private static DType ParseFloatDType(string s, string path, string key) =>
        DTypes.FromConfigName(s) ?? throw new BadInputException($"{path}: {key} '{s}' is not one of float32, float16, bfloat16");

    private static int[] ToIntShape(TensorInfo info, string path)
    {
        var shape = new int[info.Shape.Length];
        for (int i = 0; i < shape.Length; i++)
        {
            if (info.Shape[i] > int.MaxValue) throw new BadInputException($"{path}: tensor {info.Name} dimension {info.Shape[i]} is too large");
            shape[i] = (int)info.Shape[i];
        }
        if (info.ElementCount > Array.MaxLength) throw new BadInputException($"{path}: tensor {info.Name} has {info.ElementCount} elements; at most {Array.MaxLength} are supported");
        return shape;
    }

    /// <summary>Closes every model file.</summary>
    public void Dispose()
    {
        if (HasBase && !Experts.Contains(Reference)) Reference.Dispose();
        foreach (var e in Experts) e.Dispose();
    }
}
