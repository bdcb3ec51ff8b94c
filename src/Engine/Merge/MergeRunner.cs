using System.Diagnostics;
using System.Threading.Channels;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Merge;

/// <summary>
/// Executes a <see cref="MergePlan"/>: streams tensor groups through load → merge → write, each
/// stage on its own thread with a bounded queue between them, so at most a few groups are in
/// memory and reading, compute and writing overlap. The loader decodes each input straight into
/// memory the backend stages (<see cref="IStagingOps.Stage"/>: pinned slots and a copy stream on a
/// device), so the next group's uploads run while the current group's kernels do. Output is
/// written atomically.
/// </summary>
public static class MergeRunner
{
    /// <summary>
    /// A group as the loader hands it over: merge inputs staged on the backend (a missing expert shares the
    /// base's staged tensor), or for a copied tensor its raw bytes or decoded values.
    /// </summary>
    private sealed record LoadedGroup(PlannedTensor Planned, StagedTensor? Base, (int Model, StagedTensor Values)[] Experts, byte[]? Raw, float[]? Copied, bool Streamed = false) : IDisposable
    {
        public void Dispose()
        {
            Base?.Dispose();
            foreach (var (_, v) in Experts) v.Dispose();
        }
    }

    /// <summary>A merged or copied tensor for the writer: float values, or raw bytes (the first <c>RawLength</c> of a pooled array when <c>PooledRaw</c>).</summary>
    private sealed record ResultGroup(PlannedTensor Planned, float[]? Values, byte[]? Raw, int RawLength = -1, bool PooledRaw = false);

    /// <summary>
    /// Runs the merge into <paramref name="outDir"/> and returns the report (also written as <c>merge_report.json</c>):
    /// the whole output is written beside it and committed in one step (<see cref="OutputCommit"/>).
    /// </summary>
    public static MergeReport Run(MergePlan plan, string outDir, IBackend backend, IMergeProgress progress, TimeSpan planTime, CancellationToken ct = default)
    {
        using var output = OutputCommit.Begin(outDir, MergeOutput.Request(plan));
        var report = output.Write(staging => Run(plan, outDir, staging, backend, progress, planTime, ct));
        output.Commit();
        return report;
    }

    private static MergeReport Run(MergePlan plan, string outDir, string writeDir, IBackend backend, IMergeProgress progress, TimeSpan planTime, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var report = new MergeReport(plan, backend.Name) { Engines = BackendEngines.Of(backend), PlanSeconds = planTime.TotalSeconds };
        foreach (var w in plan.Warnings) progress.Warn(w);

        using var writer = new SafetensorsWriter(writeDir,
            plan.Tensors.Select(t => new TensorSpec(t.Name, t.OutDType, t.Shape.Select(d => (long)d).ToArray())),
            plan.Options.OutShardBytes);

        ulong seed = plan.Options.RandomSeed ?? 0;
        var prepare = Stopwatch.StartNew();
        var context = PrepareContext(plan, backend, seed, report.MethodReport, progress, outDir);
        plan.Method.Prepare(context);
        report.PrepareSeconds = prepare.Elapsed.TotalSeconds;

        progress.StageStarted("merge", plan.Tensors.Count);
        var loaded = Channel.CreateBounded<LoadedGroup>(Math.Max(1, plan.Options.Prefetch));
        var merged = Channel.CreateBounded<ResultGroup>(Math.Max(1, plan.Options.Prefetch));
        var loadTime = new Stopwatch();
        var computeTime = new Stopwatch();
        var writeTime = new Stopwatch();

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var loader = Task.Run(async () =>
        {
            try
            {
                foreach (var t in plan.Tensors)
                {
                    stop.Token.ThrowIfCancellationRequested();
                    loadTime.Start();
                    var g = Load(plan, t, backend, report);
                    loadTime.Stop();
                    try
                    {
                        await loaded.Writer.WriteAsync(g, stop.Token);
                    }
                    catch
                    {
                        g.Dispose();
                        throw;
                    }
                }
                loaded.Writer.Complete();
            }
            catch (Exception e) { loaded.Writer.Complete(e); }
        });

        var computer = Task.Run(async () =>
        {
            try
            {
                await foreach (var g in loaded.Reader.ReadAllAsync(stop.Token))
                {
                    computeTime.Start();
                    var r = Compute(plan, g, backend, seed, report, context.Prepared);
                    computeTime.Stop();
                    await merged.Writer.WriteAsync(r, stop.Token);
                }
                merged.Writer.Complete();
            }
            catch (Exception e)
            {
                merged.Writer.Complete(e);
                // Staged groups still queued hold pinned slots; give them back.
                while (loaded.Reader.TryRead(out var left)) left.Dispose();
            }
        });

        try
        {
            foreach (var r in merged.Reader.ReadAllAsync(ct).ToBlockingEnumerable(ct))
            {
                writeTime.Start();
                if (r.Raw is not null)
                {
                    writer.Write(r.Planned.Name, r.RawLength < 0 ? r.Raw : r.Raw.AsSpan(0, r.RawLength));
                    if (r.PooledRaw) System.Buffers.ArrayPool<byte>.Shared.Return(r.Raw);
                }
                else
                {
                    writer.WriteFloat32(r.Planned.Name, r.Values!);
                    HostArrayPool.Return(r.Values!);
                }
                writeTime.Stop();
                long outBytes = r.Planned.Shape.Aggregate(1L, (a, d) => a * d) * r.Planned.OutDType.Size();
                report.BytesWritten += outBytes;
                if (r.Planned.Action == TensorAction.Merge) report.TensorsMerged++; else report.TensorsCopied++;
                progress.Advance(r.Planned.Name, outBytes);
            }
        }
        catch
        {
            stop.Cancel(); // unblock the loader and compute threads waiting on full queues
            throw;
        }
        finally
        {
            Task.WaitAll([loader, computer], TimeSpan.FromSeconds(30));
        }
        RethrowFirst(loader, computer);

        writeTime.Start();
        writer.Commit();
        ModelDirectoryFiles.CopyConfig(plan.Reference.ConfigJsonPath, writeDir, plan.OutDType, plan.ConfigEdit);
        WriteAtomically(Path.Combine(writeDir, "taskmerge_config.yml"), plan.Config.Text);
        if (plan.Options.CopyTokenizer) CopyTagalongFiles(plan.Reference.Directory, writeDir);
        if (plan.Options.WriteModelCard)
            WriteAtomically(Path.Combine(writeDir, "README.md"), ModelCard.Generate(plan.Config, Path.GetFileName(Path.GetFullPath(outDir).TrimEnd('/'))));
        writeTime.Stop();

        report.LoadSeconds = loadTime.Elapsed.TotalSeconds;
        report.ComputeSeconds = computeTime.Elapsed.TotalSeconds;
        report.WriteSeconds = writeTime.Elapsed.TotalSeconds;
        report.ExecuteSeconds = total.Elapsed.TotalSeconds;
        report.Files = writer.WrittenFiles.Select(Path.GetFileName).ToList()!;
        WriteAtomically(Path.Combine(writeDir, "merge_report.json"), report.ToJson());
        return report;
    }

    private static void RethrowFirst(params Task[] tasks)
    {
        foreach (var t in tasks)
            if (t.Exception?.InnerException is { } e) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
    }

    private static int[] ShapeOf(MergePlan plan, string name) => plan.Tensors.First(t => t.Name == name).Shape;

    /// <summary>The <see cref="MergeContext"/> that <see cref="IMergeMethod.Prepare"/> sees for <paramref name="plan"/>.</summary>
    internal static MergeContext PrepareContext(MergePlan plan, IBackend backend, ulong seed, IDictionary<string, object> methodReport,
        IMergeProgress? progress = null, string? outDir = null) => new()
    {
        Tensors = plan.Tensors.Where(t => t.Action == TensorAction.Merge).Select(t => (t.Name, t.Shape)).ToList(),
        ExpertCount = plan.Experts.Count,
        Backend = backend,
        Parameters = plan.Parameters,
        Seed = seed,
        Report = methodReport,
        Reference = plan.Reference,
        OutputDirectory = outDir,
        ConfigDirectory = Path.GetDirectoryName(Path.GetFullPath(plan.Config.Path)),
        Progress = progress ?? NullProgress.Instance,
        Load = (name, model) => backend.FromHost(model < 0 ? LoadReference(plan, name) : LoadExpertOrBase(plan, name, model), ShapeOf(plan, name)),
    };

    /// <summary>Reads one group on the loader thread, staging every merge input on the backend as soon as it is decoded.</summary>
    private static LoadedGroup Load(MergePlan plan, PlannedTensor t, IBackend backend, MergeReport report)
    {
        if (t.Action == TensorAction.CopyBase)
        {
            var (from, name) = t.Sources?.First ?? (plan.Reference, t.Name);
            report.AddRead(t.SourceDType.Size() * Count(t.Shape));
            LoadedGroup copied;
            if (t.SourceDType == t.OutDType) copied = new LoadedGroup(t, null, [], from.GetBytes(name).ToArray(), null);
            else copied = new LoadedGroup(t, null, [], null, LoadFloat(plan, from, name, Count(t.Shape), checkFinite: false));
            ReleaseInputPages(plan, t);
            return copied;
        }
        if (t.Sources is null && HostTaskArithmetic.Applies(plan, backend))
        {
            report.AddRead(t.SourceDType.Size() * Count(t.Shape));
            foreach (int e in t.Experts)
            {
                plan.Experts[e].TryGet(t.Name, out var info);
                report.AddRead(info!.ByteLength);
            }
            return new LoadedGroup(t, null, [], null, null, Streamed: true);
        }
        if (t.Sources is { } sources) return LoadSources(plan, t, sources, backend, report);
        StagedTensor? baseValues = null;
        var experts = new List<(int, StagedTensor)>();
        try
        {
            if (plan.HasBase)
            {
                baseValues = backend.Stage(t.Shape, values => ReadFloat(plan, plan.Reference, t.Name, values));
                report.AddRead(t.SourceDType.Size() * Count(t.Shape));
            }
            foreach (int e in t.Experts.Concat(t.Missing).Order())
            {
                if (t.Missing.Contains(e)) { experts.Add((e, baseValues!)); continue; }
                plan.Experts[e].TryGet(t.Name, out var info);
                report.AddRead(info!.ByteLength);
                experts.Add((e, backend.Stage(t.Shape, values => ReadFloat(plan, plan.Experts[e], t.Name, values))));
            }
            ReleaseInputPages(plan, t);
            return new LoadedGroup(t, baseValues, experts.ToArray(), null, null);
        }
        catch
        {
            new LoadedGroup(t, baseValues, experts.ToArray(), null, null).Dispose();
            throw;
        }
    }

    /// <summary>Stages a slice tensor's inputs, each under its own model's name for it.</summary>
    private static LoadedGroup LoadSources(MergePlan plan, PlannedTensor t, TensorSources sources, IBackend backend, MergeReport report)
    {
        StagedTensor? baseValues = null;
        var experts = new List<(int, StagedTensor)>();
        StagedTensor Stage((ModelSource Model, string Name) input)
        {
            report.AddRead(input.Model.Get(input.Name).ByteLength);
            return backend.Stage(t.Shape, values => ReadFloat(plan, input.Model, input.Name, values));
        }
        try
        {
            if (sources.Base is { } b) baseValues = Stage(b);
            for (int e = 0; e < sources.Experts.Count; e++) experts.Add((e, Stage(sources.Experts[e])));
            ReleaseInputPages(plan, t);
            return new LoadedGroup(t, baseValues, experts.ToArray(), null, null);
        }
        catch
        {
            new LoadedGroup(t, baseValues, experts.ToArray(), null, null).Dispose();
            throw;
        }
    }

    /// <summary>
    /// Drops tensor <paramref name="t"/>'s mapped input pages once it has been read, so resident memory stays one
    /// group's worth whatever the model size; when the inputs are larger than half the machine's memory they also
    /// leave the page cache (they could not all stay cached anyway).
    /// </summary>
    private static void ReleaseInputPages(MergePlan plan, PlannedTensor t)
    {
        bool evict = plan.BytesToRead > GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;
        if (t.Sources is { } sources)
        {
            if (sources.Base is { } b) b.Model.ReleasePages(b.Name, evict);
            foreach (var (model, name) in sources.Experts) model.ReleasePages(name, evict);
            return;
        }
        plan.Reference.ReleasePages(t.Name, evict);
        foreach (int e in t.Experts) plan.Experts[e].ReleasePages(t.Name, evict);
    }

    private static float[] LoadReference(MergePlan plan, string name, bool checkFinite = true)
    {
        plan.Reference.TryGet(name, out var info);
        return LoadFloat(plan, plan.Reference, name, info!.ElementCount, checkFinite);
    }

    /// <summary>An expert's tensor for <see cref="IMergeMethod.Prepare"/>; the base values (τ = 0) where the expert lacks it or its shape was skipped under --allow-crimes.</summary>
    private static float[] LoadExpertOrBase(MergePlan plan, string name, int model) =>
        plan.Experts[model].TryGet(name, out var info) && plan.Tensors.First(t => t.Name == name).Experts.Contains(model)
            ? LoadFloat(plan, plan.Experts[model], name, info!.ElementCount)
            : LoadReference(plan, name);

    private static float[] LoadFloat(MergePlan plan, ModelSource source, string name, long count, bool checkFinite = true)
    {
        var a = HostArrayPool.Rent(checked((int)count));
        ReadFloat(plan, source, name, a, checkFinite);
        return a;
    }

    /// <summary>
    /// Decodes a tensor into <paramref name="values"/> and rounds it to the compute dtype; a merge input is checked
    /// for NaN/±Inf in the same pass unless <c>--allow-nonfinite</c>.
    /// </summary>
    private static void ReadFloat(MergePlan plan, ModelSource source, string name, Span<float> values, bool checkFinite = true)
    {
        if (!checkFinite || plan.Options.AllowNonFinite) source.ReadFloat32(name, values);
        else source.ReadFloat32Finite(name, values);
        FloatConvert.RoundTo(plan.ComputeDType, values);
    }

    /// <summary>
    /// The non-finite check of a tensor read in chunks on several threads: each chunk is decoded and checked in one
    /// pass, and the error names the lowest bad index whatever the chunk order, so it is the same line on any thread count.
    /// </summary>
    private sealed class FirstNonFinite(bool allow)
    {
        private readonly Lock _lock = new();
        private (ModelSource Source, string Name, long Index)? _first;

        public void Read(MergePlan plan, ModelSource source, string name, long offset, Span<float> values)
        {
            if (allow) source.ReadFloat32(name, offset, values);
            else
            {
                long bad = source.ReadFloat32FindNonFinite(name, offset, values);
                if (bad >= 0)
                    lock (_lock)
                        if (_first is not { } f || bad < f.Index || (bad == f.Index && string.CompareOrdinal(source.Path, f.Source.Path) < 0))
                            _first = (source, name, bad);
            }
            FloatConvert.RoundTo(plan.ComputeDType, values);
        }

        public BadInputException? Error() => _first is { } f ? f.Source.NonFiniteError(f.Name, f.Index) : null;
    }

    private static ResultGroup Compute(MergePlan plan, LoadedGroup g, IBackend backend, ulong seed, MergeReport report, PreparedTensors prepared)
    {
        if (g.Raw is not null) return new ResultGroup(g.Planned, null, g.Raw);
        if (g.Planned.Action == TensorAction.CopyBase) return new ResultGroup(g.Planned, g.Copied, null);
        if (g.Streamed)
        {
            var nonFinite = new FirstNonFinite(plan.Options.AllowNonFinite);
            var (bytes, length) = HostTaskArithmetic.Merge(plan, g.Planned, (Tensors.Cpu.CpuBackend)backend, seed,
                (source, name, offset, values) => nonFinite.Read(plan, source, name, offset, values));
            ReleaseInputPages(plan, g.Planned);
            if (nonFinite.Error() is { } error)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(bytes);
                throw error;
            }
            return new ResultGroup(g.Planned, null, bytes, length, PooledRaw: true);
        }
        Tensor? baseT = null;
        var experts = new List<ExpertTensor>();
        try
        {
            baseT = g.Base?.Take();
            foreach (var (model, values) in g.Experts)
                experts.Add(new ExpertTensor(model, ReferenceEquals(values, g.Base) ? baseT! : values.Take()));
            var diagnostics = new Dictionary<string, object>();
            var result = plan.Method.Merge(new TensorGroup
            {
                Name = g.Planned.Name, Depth = g.Planned.Depth, Base = baseT, Experts = experts, Backend = backend,
                Parameters = g.Planned.Sources?.Parameters ?? plan.Parameters, Seed = seed, Diagnostics = diagnostics, Prepared = prepared,
            });
            if (diagnostics.Count > 0) report.AddTensorDiagnostics(g.Planned.Name, diagnostics);
            return new ResultGroup(g.Planned, backend.DetachToHost(result), null);
        }
        finally
        {
            // A tensor the method returned was detached above, so disposing it again does nothing.
            foreach (var e in experts) e.Values.Dispose();
            baseT?.Dispose();
            g.Dispose();
        }
    }

    private static long Count(int[] shape) => shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>Tokenizer and preprocessor files copied from the base model directory, as mergekit.</summary>
    internal static readonly string[] TagalongFiles =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "vocab.json",
        "merges.txt", "added_tokens.json", "preprocessor_config.json", "generation_config.json",
    ];

    private static void CopyTagalongFiles(string? sourceDir, string outDir)
    {
        if (sourceDir is null || SameDirectory(sourceDir, outDir)) return;
        foreach (var name in TagalongFiles)
        {
            string src = Path.Combine(sourceDir, name);
            if (!File.Exists(src)) continue;
            string dst = Path.Combine(outDir, name), tmp = dst + $".tmp-{Environment.ProcessId}";
            File.Copy(src, tmp, overwrite: true);
            File.Move(tmp, dst, overwrite: true);
        }
    }

    private static bool SameDirectory(string a, string b) =>
        string.Equals(Path.GetFullPath(a).TrimEnd('/'), Path.GetFullPath(b).TrimEnd('/'), StringComparison.Ordinal);

    /// <summary>Writes a text file through a temporary name and a rename.</summary>
    public static void WriteAtomically(string path, string text)
    {
        string tmp = path + $".tmp-{Environment.ProcessId}";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }
}
