using System.Text.Json;
using System.Text.Json.Nodes;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Merge;

/// <summary>What a merge did: method, resolved parameters, timings, bytes moved, diagnostics.</summary>
public sealed class MergeReport
{
    private readonly MergePlan _plan;
    private readonly Dictionary<string, Dictionary<string, object>> _tensorDiagnostics = [];
    private long _bytesRead;

    /// <summary>Creates an empty report for a plan.</summary>
    public MergeReport(MergePlan plan, string device)
    {
        _plan = plan;
        Device = device;
    }

    /// <summary>Device the merge ran on.</summary>
    public string Device { get; }

    /// <summary>What ran the ops and which CUDA libraries were loaded (<see cref="BackendEngines.Of"/>); empty when not known.</summary>
    public IReadOnlyDictionary<string, object> Engines { get; init; } = new Dictionary<string, object>();

    /// <summary>Seconds spent planning (header reads and validation).</summary>
    public double PlanSeconds { get; set; }

    /// <summary>Seconds in the method's whole-model preparation pass.</summary>
    public double PrepareSeconds { get; set; }

    /// <summary>Seconds the loader thread spent reading and converting tensors.</summary>
    public double LoadSeconds { get; set; }

    /// <summary>Seconds the compute thread spent merging.</summary>
    public double ComputeSeconds { get; set; }

    /// <summary>Seconds spent writing output.</summary>
    public double WriteSeconds { get; set; }

    /// <summary>Wall seconds of the whole execution (stages overlap).</summary>
    public double ExecuteSeconds { get; set; }

    /// <summary>Tensor bytes read from inputs.</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);

    /// <summary>Tensor bytes written.</summary>
    public long BytesWritten { get; set; }

    /// <summary>Tensors merged by the method.</summary>
    public int TensorsMerged { get; set; }

    /// <summary>Tensors copied from the base.</summary>
    public int TensorsCopied { get; set; }

    /// <summary>Output files (names within the output directory).</summary>
    public List<string> Files { get; set; } = [];

    /// <summary>Model-level diagnostics written by the method.</summary>
    public Dictionary<string, object> MethodReport { get; } = [];

    internal void AddRead(long bytes) => Interlocked.Add(ref _bytesRead, bytes);

    internal void AddTensorDiagnostics(string tensor, Dictionary<string, object> d)
    {
        lock (_tensorDiagnostics) _tensorDiagnostics[tensor] = d;
    }

    /// <summary>The report as indented JSON (the <c>merge_report.json</c> format).</summary>
    public string ToJson()
    {
        var o = new JsonObject
        {
            ["tool"] = "taskmerge",
            ["method"] = _plan.Method.Name,
            ["parameters"] = ToNode(_plan.Parameters.ResolvedGlobals()),
            ["base_model"] = _plan.HasBase ? _plan.Config.BaseModel : null,
            ["models"] = new JsonArray(_plan.ExpertEntries.Select((e, i) => (JsonNode)new JsonObject
            {
                ["model"] = e.Model,
                ["path"] = _plan.Experts[i].Path,
                ["parameters"] = new JsonObject(e.Parameters.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)JsonValue.Create(Methods.MergeParameters.Describe(p.Value))))),
            }).ToArray()),
            ["device"] = Device,
            ["engines"] = ToNode(Engines.ToDictionary(e => e.Key, e => e.Value)),
            ["compute_dtype"] = _plan.ComputeDType.TorchName(),
            ["out_dtype"] = _plan.OutDType?.TorchName(),
            ["random_seed"] = _plan.Options.RandomSeed is { } s ? JsonValue.Create(s) : null,
            ["timings_s"] = new JsonObject
            {
                ["plan"] = PlanSeconds, ["prepare"] = PrepareSeconds, ["load"] = LoadSeconds,
                ["compute"] = ComputeSeconds, ["write"] = WriteSeconds, ["execute_wall"] = ExecuteSeconds,
            },
            ["bytes_to_read_planned"] = _plan.BytesToRead,
            ["estimated_peak_bytes"] = _plan.EstimatedPeakBytes,
            ["bytes_read"] = BytesRead,
            ["bytes_written"] = BytesWritten,
            ["tensors"] = new JsonObject { ["merged"] = TensorsMerged, ["copied"] = TensorsCopied, ["total"] = TensorsMerged + TensorsCopied },
            ["files"] = new JsonArray(Files.Select(f => (JsonNode)JsonValue.Create(f)!).ToArray()),
            ["warnings"] = new JsonArray(_plan.Warnings.Select(w => (JsonNode)JsonValue.Create(w)!).ToArray()),
            ["skipped_shape_mismatch"] = new JsonArray(_plan.SkippedForShape.Select(w => (JsonNode)JsonValue.Create(w)!).ToArray()),
        };
        if (MethodReport.Count > 0) o["method_report"] = ToNode(MethodReport);
        if (_tensorDiagnostics.Count > 0)
            o["tensor_diagnostics"] = new JsonObject(_tensorDiagnostics.OrderBy(k => k.Key, StringComparer.Ordinal)
                .Select(k => KeyValuePair.Create(k.Key, (JsonNode?)ToNode(k.Value))));
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private static JsonNode? ToNode(object? v) => v switch
    {
        null => null,
        JsonNode n => n,
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        double d => double.IsFinite(d) ? JsonValue.Create(d) : JsonValue.Create(d.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        float f => ToNode((double)f),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        System.Collections.IDictionary d => new JsonObject(d.Keys.Cast<object>().Select(k => KeyValuePair.Create(k.ToString()!, ToNode(d[k])))),
        System.Collections.IEnumerable e => new JsonArray(e.Cast<object?>().Select(ToNode).ToArray()),
        _ => JsonValue.Create(v.ToString()),
    };
}
