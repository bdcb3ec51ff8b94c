using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using TaskMerge.Engine;
using TaskMerge.Engine.Embedding;
using TaskMerge.Engine.Merge;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Native;

/// <summary>
/// The entry points behind <c>include/taskmerge.h</c>. Each returns a status (<see cref="Status"/>) and never
/// lets an exception cross into native code; the message of the last failure on the calling thread is kept
/// for <c>tm_last_error</c>.
/// </summary>
public static unsafe class Exports
{
    /// <summary>Status codes, the CLI's exit codes plus cancellation.</summary>
    private enum Status
    {
        Ok = 0,
        Internal = 1,
        BadInput = 2,
        Cancelled = 3,
    }

    [ThreadStatic] private static nint t_lastError;

    private static readonly ConcurrentDictionary<CancellationTokenSource, byte> Running = new();

    /// <summary>One backend per (device, threads) for in-memory merges, each driven by one call at a time.</summary>
    private static readonly ConcurrentDictionary<(string Device, int Threads), IBackend> Backends = new();

    private static int Main() => 0;

    /// <summary><c>tm_merge</c>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "tm_merge")]
    public static int Merge(byte* config, byte* outDir, byte* optionsJson, delegate* unmanaged<int, byte*, byte*, long, long, void*, void> progress, void* user)
    {
        using var cts = new CancellationTokenSource();
        Running.TryAdd(cts, 0);
        try
        {
            return Guard(() =>
            {
                string cfgText = Utf8(config) ?? throw new BadInputException("config: NULL");
                string outPath = Utf8(outDir) ?? throw new BadInputException("out_dir: NULL");
                var (options, settings) = MergeApi.ParseOptions(Utf8(optionsJson));
                var cfg = MergeApi.LoadConfig(cfgText);
                IMergeProgress sink = progress == null ? NullProgress.Instance : new CallbackProgress(progress, user);
                MergeApi.Run(cfg, outPath, options, settings, sink, cts.Token);
            });
        }
        finally
        {
            Running.TryRemove(cts, out _);
        }
    }

    /// <summary><c>tm_cancel</c>: cancels every merge running now; returns how many.</summary>
    [UnmanagedCallersOnly(EntryPoint = "tm_cancel")]
    public static int Cancel()
    {
        int n = 0;
        foreach (var cts in Running.Keys)
        {
            try { cts.Cancel(); n++; }
            catch (ObjectDisposedException) { }
        }
        return n;
    }

    /// <summary><c>tm_inspect</c>: the JSON, allocated for <c>tm_free</c>, or NULL with the error kept.</summary>
    [UnmanagedCallersOnly(EntryPoint = "tm_inspect")]
    public static byte* Inspect(byte* path)
    {
        byte* result = null;
        Guard(() =>
        {
            string p = Utf8(path) ?? throw new BadInputException("path: NULL");
            result = (byte*)Marshal.StringToCoTaskMemUTF8(ModelInspection.ToJson(p));
        });
        return result;
    }

    /// <summary><c>tm_free</c>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "tm_free")]
    public static void Free(void* p) => Marshal.FreeCoTaskMem((nint)p);

    /// <summary><c>tm_last_error</c>: the calling thread's last failure message; valid until its next failing call.</summary>
    [UnmanagedCallersOnly(EntryPoint = "tm_last_error")]
    public static byte* LastError() => (byte*)t_lastError;

    /// <summary><c>tm_merge_tensors</c>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "tm_merge_tensors")]
    public static int MergeTensors(byte* method, byte* paramsJson, float* baseValues, float** experts, int nExperts, long numel, long* shape, int ndim, float* output) =>
        Guard(() =>
        {
            string m = Utf8(method) ?? throw new BadInputException("method: NULL");
            if (nExperts <= 0 || experts == null) throw new BadInputException($"n_experts is {nExperts}; at least one expert is needed");
            if (output == null) throw new BadInputException("out: NULL");
            if (ndim < 0 || (ndim > 0 && shape == null)) throw new BadInputException($"ndim {ndim} with shape {(shape == null ? "NULL" : "given")}");
            if (numel < 0 || numel > Array.MaxLength) throw new BadInputException($"numel {numel} is out of range (0 … {Array.MaxLength})");
            var dims = new int[ndim];
            for (int i = 0; i < ndim; i++)
                dims[i] = shape[i] is >= 0 and <= int.MaxValue ? (int)shape[i] : throw new BadInputException($"shape[{i}] = {shape[i]} is out of range");
            for (int i = 0; i < nExperts; i++)
                if (experts[i] == null) throw new BadInputException($"experts[{i}]: NULL");

            var (json, device, threads) = SplitDevice(Utf8(paramsJson));
            var backend = Backends.GetOrAdd((device, threads), k => BackendFactory.Create(k.Device, k.Threads, out _));
            int n = (int)numel;
            HostFill? fillBase = baseValues == null ? null : CopyFrom(baseValues, n);
            var fills = new HostFill[nExperts];
            for (int i = 0; i < nExperts; i++) fills[i] = CopyFrom(experts[i], n);
            lock (backend) TensorMerge.Run(backend, m, json, dims, fillBase, fills, new Span<float>(output, n));
        });

    private static HostFill CopyFrom(float* src, int n)
    {
        nint p = (nint)src;
        return dst => new ReadOnlySpan<float>((float*)p, n).CopyTo(dst);
    }

    /// <summary>Takes the ABI's own keys <c>device</c> and <c>num_threads</c> out of the parameters JSON.</summary>
    private static (string? Json, string Device, int Threads) SplitDevice(string? json)
    {
        if (string.IsNullOrWhiteSpace(json) || (!json.Contains("\"device\"") && !json.Contains("\"num_threads\""))) return (json, "auto", 0);
        JsonNode? node;
        try { node = JsonNode.Parse(json); }
        catch (System.Text.Json.JsonException e) { throw new BadInputException($"params: invalid JSON: {e.Message}"); }
        if (node is not JsonObject obj) throw new BadInputException("params: must be a JSON object");
        string device = "auto";
        int threads = 0;
        if (obj["device"] is { } d) device = d.GetValueKind() == System.Text.Json.JsonValueKind.String ? d.GetValue<string>() : throw new BadInputException("params: 'device' must be a string");
        if (obj["num_threads"] is { } t) threads = t.GetValueKind() == System.Text.Json.JsonValueKind.Number && t.GetValue<int>() >= 0 ? t.GetValue<int>() : throw new BadInputException("params: 'num_threads' must be a non-negative integer");
        obj.Remove("device");
        obj.Remove("num_threads");
        return (obj.ToJsonString(), device, threads);
    }

    private static string? Utf8(byte* s) => s == null ? null : Marshal.PtrToStringUTF8((nint)s);

    private static int Guard(Action body)
    {
        try
        {
            body();
            return (int)Status.Ok;
        }
        catch (Exception e)
        {
            var (status, message) = Classify(e);
            SetLastError(message);
            return (int)status;
        }
    }

    private static (Status, string) Classify(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
        return e switch
        {
            BadInputException bad => (Status.BadInput, OneLine(bad.Message)),
            OperationCanceledException => (Status.Cancelled, "cancelled: the merge was stopped by tm_cancel; no model.safetensors was written"),
            _ => (Status.Internal, $"internal error: {OneLine(e.Message)} ({e.GetType().Name})"),
        };
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");

    private static void SetLastError(string message)
    {
        if (t_lastError != 0) Marshal.FreeCoTaskMem(t_lastError);
        t_lastError = Marshal.StringToCoTaskMemUTF8(message);
    }

    /// <summary>Forwards progress to the C callback (strings are valid for the duration of the call).</summary>
    private sealed class CallbackProgress(delegate* unmanaged<int, byte*, byte*, long, long, void*, void> callback, void* user) : IMergeProgress
    {
        private const int StageEvent = 0, ItemEvent = 1, WarningEvent = 2, NoteEvent = 3, StepEvent = 4;
        private readonly nint _callback = (nint)callback;
        private readonly nint _user = (nint)user;
        private string _stage = "";
        private long _done, _total;

        public void StageStarted(string stage, long total)
        {
            _stage = stage;
            _done = 0;
            _total = total;
            Send(StageEvent, stage, null, 0, total);
        }

        public void Advance(string item, long bytes) => Send(ItemEvent, _stage, item, ++_done, _total);

        public void Warn(string message) => Send(WarningEvent, _stage, message, _done, _total);

        public void Note(string message) => Send(NoteEvent, _stage, message, _done, _total);

        public void TrainingStep(string stage, int step, int steps, double loss, double itemsPerSecond) =>
            Send(StepEvent, stage, FormattableString.Invariant($"loss {loss:R}"), step, steps);

        private void Send(int kind, string stage, string? text, long done, long total)
        {
            fixed (byte* s = NullTerminated(stage))
            fixed (byte* t = text is null ? null : NullTerminated(text))
                ((delegate* unmanaged<int, byte*, byte*, long, long, void*, void>)_callback)(kind, s, t, done, total, (void*)_user);
        }

        private static byte[] NullTerminated(string s)
        {
            var b = new byte[Encoding.UTF8.GetByteCount(s) + 1];
            Encoding.UTF8.GetBytes(s, b);
            return b;
        }
    }
}
