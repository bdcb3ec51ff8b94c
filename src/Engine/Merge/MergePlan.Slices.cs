using System.Text.Json;
using System.Text.Json.Nodes;
using TaskMerge.Engine.Architectures;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Merge;

/// <summary>
/// Planning of <c>slices:</c> and <c>modules:</c> configs as mergekit's <c>MergePlanner</c> does it: per module, the
/// weights before the layer stack from the first slice's sources, then every slice layer by layer (gradient t =
/// i/(n−1) within the slice, 1 for a one-layer slice), renumbered consecutively, then the weights after the stack
/// from the last slice's sources (t = 0 for both). Tensor names come from the architecture tables
/// (<see cref="ArchitectureTable"/>); the written <c>config.json</c> gets each module's new layer count.
/// </summary>
public sealed partial class MergePlan
{
    private static MergePlan CreateSliced(MergeConfig config, MergeOptions options, IMergeMethod method)
    {
        if (method.GetType().GetMethod(nameof(IMergeMethod.Prepare), [typeof(MergeContext)]) is not null)
            throw new BadInputException($"{config.Path}: merge_method {method.Name} works on whole models; list them under 'models:' instead of slices:/modules:");
        var warnings = new List<string>();
        foreach (var k in config.IgnoredKeys) warnings.Add($"{config.Path}: key '{k}' is ignored by taskmerge");
        DType compute = config.DType is null ? DType.F32 : ParseFloatDType(config.DType, config.Path, "dtype");
        if (compute == DType.F64) throw new BadInputException($"{config.Path}: dtype float64 is not supported for compute; use float32");
        DType? outDType = config.OutDType is not null ? ParseFloatDType(config.OutDType, config.Path, "out_dtype")
            : config.DType is not null ? compute : null;

        var hub = options.Hub ?? HubSettings.FromEnvironment();
        var opened = new Dictionary<string, ModelSource>(StringComparer.Ordinal);
        var entries = new List<ModelEntry>();
        var configs = new Dictionary<ModelSource, JsonObject?>();
        try
        {
            ModelSource Open(string written, string resolved, string as_)
            {
                string key = Path.GetFullPath(resolved).TrimEnd('/');
                if (opened.TryGetValue(key, out var m)) return m;
                m = ModelSource.Open(HuggingFaceHub.Locate(written, resolved, hub, as_));
                opened[key] = m;
                entries.Add(new ModelEntry(written, resolved, new Dictionary<string, ParameterSetting>()));
                configs[m] = m.ConfigJsonPath is { } cp ? ReadConfig(cp) : null;
                return m;
            }

            ModelSource? baseModel = config.BaseModelPath is null ? null : Open(config.BaseModel!, config.BaseModelPath, "base_model");
            foreach (var module in config.Modules!)
                foreach (var slice in module.Slices)
                {
                    if (slice.BaseModelPath is not null) Open(slice.BaseModel!, slice.BaseModelPath, "base_model");
                    foreach (var s in slice.Sources) Open(s.Model, s.ResolvedPath, "model");
                }
            var models = opened.Values.ToList();
            var donor = baseModel ?? models[0];
            if (configs[donor] is not { } donorConfig)
                throw new BadInputException($"{donor.Path}: slices:/modules: need the model's config.json to know its architecture and layer count");
            var arch = ArchitectureTable.For(donorConfig, donor.ConfigJsonPath!);
            ArchitectureCheck.Run(donor, models, options.AllowCrimes, warnings);

            var planned = new List<PlannedTensor>();
            var edits = new List<Action<JsonObject>>();
            var written = new HashSet<string>(StringComparer.Ordinal);
            var read = new Dictionary<ModelSource, HashSet<string>>();
            long bytes = 0;

            void Plan(string outName, IReadOnlyList<(ModelSource Model, string Name, IReadOnlyDictionary<string, ParameterSetting> Ps)> inputs,
                ModelSource? sliceBase, OutputSlice slice, OutputModule module, double t)
            {
                var first = inputs[0];
                var info = first.Model.Get(first.Name);
                if (!written.Add(outName)) throw new BadInputException($"{slice.Location}: output tensor {outName} would be written twice");
                (ModelSource, string)? baseIn = null;
                var experts = inputs.ToList();
                if (method.DropsBaseFromModels && sliceBase is not null && experts.FindIndex(x => x.Model == sliceBase) is int bi and >= 0)
                {
                    baseIn = (experts[bi].Model, experts[bi].Name);
                    experts.RemoveAt(bi);
                }
                else if (method.UsesTaskVectors)
                    throw new BadInputException(sliceBase is null
                        ? $"{config.Path}: merge_method {method.Name} needs a base_model"
                        : $"{slice.Location}: merge_method {method.Name} needs base_model {sliceBase.Path} among the slice's sources");
                foreach (var (m, n, _) in inputs)
                {
                    var ei = m.TryGet(n, out var x) ? x : throw new BadInputException($"{m.Path}: tensor {n} (needed for output {outName}) not found");
                    if (!ei.Shape.SequenceEqual(info.Shape))
                        throw new BadInputException($"{m.Path}: tensor {n} has shape [{string.Join(",", ei.Shape)}] but {first.Model.Path}'s {first.Name} has [{string.Join(",", info.Shape)}]");
                    if (info.DType.IsFloat() != ei.DType.IsFloat())
                        throw new BadInputException($"{m.Path}: tensor {n} is {ei.DType.SafetensorsName()} but {first.Model.Path}'s {first.Name} is {info.DType.SafetensorsName()}");
                    bytes += ei.ByteLength;
                    (read.TryGetValue(m, out var set) ? set : read[m] = []).Add(n);
                }
                var ps = new MergeParameters(method.Parameters, [slice.Parameters, module.Parameters, config.Parameters],
                    experts.Select(e => e.Ps).ToList(), warnings);
                bool merge = info.DType.IsFloat();
                planned.Add(new PlannedTensor(outName, ToIntShape(info, first.Model.Path), info.DType, merge ? outDType ?? info.DType : info.DType,
                    merge ? TensorAction.Merge : TensorAction.CopyBase, Enumerable.Range(0, experts.Count).ToArray(), [], t)
                {
                    Sources = new TensorSources(baseIn, experts.Select(e => (e.Model, e.Name)).ToList(), ps),
                });
            }

            foreach (var module in config.Modules!)
            {
                var table = ModuleFor(arch, module, config.Path);
                int LayersOf(ModelSource m) => table.LayerCount(configs[m]) ?? CountLayers(table, m);
                var slices = module.Slices.Select(sl => sl with
                {
                    Sources = sl.Sources.Select(s => s.Start is null ? s with { Start = 0, End = LayersOf(Find(s)) } : s).ToList(),
                }).ToList();
                // A module's models: list gets the base as one more whole-model source, as mergekit normalises it.
                foreach (var (sl, i) in slices.Select((x, i) => (x, i)).ToList())
                    if (module.Slices[i].Sources.All(s => s.Start is null) && baseModel is not null && sl.Sources.All(s => Find(s) != baseModel))
                        slices[i] = sl with { Sources = [.. sl.Sources, new SliceSource(config.BaseModel!, config.BaseModelPath!, 0, LayersOf(baseModel), new Dictionary<string, ParameterSetting>(), sl.Location)] };

                ModelSource Find(SliceSource s) => opened[Path.GetFullPath(s.ResolvedPath).TrimEnd('/')];
                ModelSource? BaseOf(OutputSlice sl) => sl.BaseModelPath is { } p ? opened[Path.GetFullPath(p).TrimEnd('/')] : baseModel;
                List<(ModelSource, string, IReadOnlyDictionary<string, ParameterSetting>)>? Inputs(WeightTemplate w, OutputSlice sl, int? layerOffset, out string? outName)
                {
                    outName = null;
                    var first = Find(sl.Sources[0]);
                    int srcLayer = sl.Sources[0].Start!.Value + (layerOffset ?? 0);
                    int k = w.For(srcLayer).ToList().FindIndex(first.Contains);
                    if (k < 0)
                    {
                        if (w.Optional) return null;
                        throw new BadInputException($"{first.Path}: tensor {w.For(srcLayer).First()} of architecture {arch.ModelType} not found");
                    }
                    var list = new List<(ModelSource, string, IReadOnlyDictionary<string, ParameterSetting>)>();
                    foreach (var s in sl.Sources)
                    {
                        var m = Find(s);
                        int layer = s.Start!.Value + (layerOffset ?? 0);
                        string n = w.For(layer).ElementAt(k);
                        list.Add((m, w.Find(m.Contains, layer) ?? n, s.Parameters));
                    }
                    outName = w.Spellings[k];
                    return list;
                }

                int outLayers = 0;
                var layerSources = new List<(ModelSource Model, int Layer)>();
                foreach (var w in table.Pre)
                    if (Inputs(w, slices[0], null, out var name) is { } ins) Plan(name!, ins, BaseOf(slices[0]), slices[0], module, 0);
                foreach (var sl in slices)
                {
                    foreach (var s in sl.Sources)
                    {
                        int have = LayersOf(Find(s));
                        if (s.End > have) throw new BadInputException($"{s.Location}: layer_range [{s.Start}, {s.End}) but {Find(s).Path} has {have} layers");
                    }
                    int n = sl.Sources[0].End!.Value - sl.Sources[0].Start!.Value;
                    for (int i = 0; i < n; i++)
                    {
                        double t = n > 1 ? i / (double)(n - 1) : 1;
                        foreach (var w in table.Layer)
                            if (Inputs(w, sl, i, out var name) is { } ins)
                                Plan(name!.Replace("{layer}", outLayers.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal), ins, BaseOf(sl), sl, module, t);
                        layerSources.Add((Find(sl.Sources[0]), sl.Sources[0].Start!.Value + i));
                        outLayers++;
                    }
                }
                foreach (var w in table.Post)
                    if (Inputs(w, slices[^1], null, out var name) is { } ins) Plan(name!, ins, BaseOf(slices[^1]), slices[^1], module, 0);
                edits.Add(cfg => EditLayers(cfg, table, outLayers, layerSources, configs));
            }

            foreach (var (m, names) in read)
            {
                int dropped = m.Tensors.Count(t => !names.Contains(t.Name));
                if (dropped > 0 && m.Tensors.Any(t => !names.Contains(t.Name) && t.DType.IsFloat()))
                    warnings.Add($"{m.Path}: {dropped} tensor(s) outside the slices (or not in the {arch.ModelType} layer table) are not written");
            }
            // mergekit reads the method's per-model parameters for every source; warnings repeat per slice.
            var distinctWarnings = warnings.Distinct().ToList();
            var parameters = new MergeParameters(method.Parameters, config.Parameters, [], new List<string>());
            return new MergePlan
            {
                Config = config, Method = method, Parameters = parameters, Reference = donor, HasBase = baseModel is not null,
                Experts = models, ExpertEntries = entries, Tensors = planned, ComputeDType = compute, OutDType = outDType,
                Warnings = distinctWarnings, SkippedForShape = [], BytesToRead = bytes, Options = options,
                ConfigEdit = cfg => { foreach (var e in edits) e(cfg); },
            };
        }
        catch
        {
            foreach (var d in opened.Values) d.Dispose();
            throw;
        }
    }

    private static ModuleTable ModuleFor(ArchitectureTable arch, OutputModule module, string path)
    {
        if (module.Name is null)
            return arch.Modules.Count == 1 ? arch.Modules[0]
                : throw new BadInputException($"{module.Location}: architecture {arch.ModelType} has modules {string.Join(", ", arch.Modules.Select(m => m.Name))}; use 'modules:' to give slices per module");
        return arch.Modules.FirstOrDefault(m => m.Name == module.Name)
            ?? throw new BadInputException($"{module.Location}: architecture {arch.ModelType} has no module '{module.Name}' (it has {string.Join(", ", arch.Modules.Select(m => m.Name))})");
    }

    /// <summary>Layer count from tensor names, for a model without a config.json: one past the highest layer whose first template weight exists.</summary>
    private static int CountLayers(ModuleTable table, ModelSource m)
    {
        int n = 0;
        var probe = table.Layer.First(w => !w.Optional);
        while (probe.Find(m.Contains, n) is not null) n++;
        return n;
    }

    /// <summary>Sets the module's layer count and rebuilds its per-layer lists (e.g. <c>layer_types</c>) from the source layers.</summary>
    private static void EditLayers(JsonObject cfg, ModuleTable table, int layers, List<(ModelSource Model, int Layer)> sources, Dictionary<ModelSource, JsonObject?> configs)
    {
        ConfigPath.Set(cfg, table.NumLayersKey, layers);
        foreach (var key in table.PerLayerConfig)
        {
            if (ConfigPath.Get(cfg, key) is not JsonArray) continue;
            var list = new JsonArray();
            foreach (var (m, layer) in sources)
            {
                var src = ConfigPath.Get(configs[m] ?? cfg, key) as JsonArray;
                list.Add(src is not null && layer < src.Count ? src[layer]?.DeepClone() : null);
            }
            ConfigPath.Set(cfg, key, list);
        }
    }

    private static JsonObject? ReadConfig(string path)
    {
        try
        {
            return JsonNode.Parse(IOText.ReadAllText(path, path, "config.json")) as JsonObject;
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{path}: not valid JSON ({e.Message})");
        }
    }
}
