using TaskMerge.Engine.Config;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace TaskMerge.Engine.Embedding;

/// <summary>
/// Merges one tensor held by the caller, without files: the same method code a whole-model merge runs on
/// each tensor. Each input is copied once into memory the backend stages (on a device that is the upload
/// the kernels need; on the CPU the pooled array its ops run on) and the result once into the caller's
/// output. Methods that need a pass over the whole model first (AWD, RI) are refused.
/// </summary>
public static class TensorMerge
{
    /// <summary>
    /// Merges <paramref name="experts"/> (and <paramref name="baseValues"/>, null for methods that need no base)
    /// of shape <paramref name="shape"/> into <paramref name="output"/>.
    /// </summary>
    /// <param name="backend">Backend to compute on (one thread drives it at a time).</param>
    /// <param name="method">A <c>merge_method</c> name.</param>
    /// <param name="parametersJson">
    /// A JSON object: top-level method parameters as under a config's <c>parameters:</c>; <c>models</c>, a list
    /// with one parameter object per expert; <c>seed</c> (random methods), <c>tensor</c> (the name that filters
    /// and the random stream see, default "tensor") and <c>depth</c> (layer depth t for gradients, default 0).
    /// Null or empty: the defaults.
    /// </param>
    /// <param name="shape">Dimensions, outermost first.</param>
    /// <param name="baseValues">θ₀, or null.</param>
    /// <param name="experts">θ₁ … θₙ.</param>
    /// <param name="output">Receives the merged tensor (same element count).</param>
    public static void Run(IBackend backend, string method, string? parametersJson, int[] shape,
        ReadOnlyMemory<float>? baseValues, IReadOnlyList<ReadOnlyMemory<float>> experts, Span<float> output)
    {
        HostFill? fillBase = baseValues is { } b ? dst => b.Span.CopyTo(dst) : null;
        Run(backend, method, parametersJson, shape, fillBase, experts.Select(e => (HostFill)(dst => e.Span.CopyTo(dst))).ToArray(), output);
    }

    /// <summary>As the other overload, with inputs given as fills of the staged memory (the C ABI passes pointer copies).</summary>
    public static void Run(IBackend backend, string method, string? parametersJson, int[] shape,
        HostFill? fillBase, IReadOnlyList<HostFill> fillExperts, Span<float> output)
    {
        var m = MethodRegistry.Create(method);
        if (NeedsWholeModel(m)) throw new BadInputException($"merge_method '{method}' needs a pass over the whole model first; merge files with tm_merge / MergeApi.Run instead");
        if (fillExperts.Count == 0) throw new BadInputException("no experts given");
        if (fillBase is null && m.UsesTaskVectors) throw new BadInputException($"merge_method '{method}' needs a base tensor");
        long count = 1;
        foreach (int d in shape) count = d >= 0 ? count * d : throw new BadInputException($"shape [{string.Join(", ", shape)}] has a negative dimension");
        if (count != output.Length) throw new BadInputException($"shape [{string.Join(", ", shape)}] has {count} elements, numel says {output.Length}");

        var request = ParseRequest(parametersJson, fillExperts.Count);
        var warnings = new List<string>();
        var parameters = new MergeParameters(m.Parameters, request.Global, request.PerModel, warnings);
        if (warnings.Count > 0) throw new BadInputException($"params: {warnings[0]}");

        Tensor? baseT = null;
        var tensors = new List<ExpertTensor>();
        try
        {
            if (fillBase is not null) baseT = backend.Stage(shape, fillBase).Take();
            for (int i = 0; i < fillExperts.Count; i++) tensors.Add(new ExpertTensor(i, backend.Stage(shape, fillExperts[i]).Take()));
            using var result = m.Merge(new TensorGroup
            {
                Name = request.Tensor, Depth = request.Depth, Base = baseT, Experts = tensors, Backend = backend,
                Parameters = parameters, Seed = request.Seed, Diagnostics = new Dictionary<string, object>(),
            });
            backend.Download(result, output);
        }
        finally
        {
            foreach (var e in tensors) e.Values.Dispose();
            baseT?.Dispose();
        }
    }

    /// <summary>True when the method overrides <see cref="IMergeMethod.Prepare"/> (a whole-model pass before the tensors).</summary>
    private static bool NeedsWholeModel(IMergeMethod m)
    {
        var map = m.GetType().GetInterfaceMap(typeof(IMergeMethod));
        int i = Array.FindIndex(map.InterfaceMethods, x => x.Name == nameof(IMergeMethod.Prepare));
        return map.TargetMethods[i].DeclaringType != typeof(IMergeMethod);
    }

    private sealed record Request(Dictionary<string, ParameterSetting> Global, List<IReadOnlyDictionary<string, ParameterSetting>> PerModel, ulong Seed, string Tensor, double Depth);

    private static Request ParseRequest(string? json, int experts)
    {
        var perModel = Enumerable.Range(0, experts).Select(_ => (IReadOnlyDictionary<string, ParameterSetting>)new Dictionary<string, ParameterSetting>()).ToList();
        if (string.IsNullOrWhiteSpace(json)) return new Request([], perModel, 0, "tensor", 0);
        var stream = new YamlStream();
        try { stream.Load(new StringReader(json)); }
        catch (YamlException e) { throw new BadInputException($"params: invalid JSON: {e.Message}"); }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new BadInputException("params: must be a JSON object");

        var global = new YamlMappingNode();
        ulong seed = 0;
        string tensor = "tensor";
        double depth = 0;
        foreach (var (k, v) in root.Children)
        {
            string key = ((YamlScalarNode)k).Value ?? "";
            switch (key)
            {
                case "models":
                    if (v is not YamlSequenceNode list || list.Children.Count != experts)
                        throw new BadInputException($"params: 'models' must be a list of {experts} parameter objects, one per expert");
                    for (int i = 0; i < experts; i++) perModel[i] = MergeConfig.ParseParameters(list.Children[i], "params.models");
                    break;
                case "seed":
                    if (v is not YamlScalarNode { Value: { } s } || !ulong.TryParse(s, out seed)) throw new BadInputException("params: 'seed' must be a non-negative integer");
                    break;
                case "tensor":
                    tensor = (v as YamlScalarNode)?.Value ?? throw new BadInputException("params: 'tensor' must be a string");
                    break;
                case "depth":
                    if (v is not YamlScalarNode { Value: { } t } || !ParameterParsing.TryParseDouble(t, out depth) || depth is < 0 or > 1)
                        throw new BadInputException("params: 'depth' must be a number in [0, 1]");
                    break;
                default:
                    global.Add(k, v);
                    break;
            }
        }
        return new Request(MergeConfig.ParseParameters(global, "params"), perModel, seed, tensor, depth);
    }
}
