using TaskMerge.Engine.IO;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Merge;

/// <summary>
/// <c>taskmerge ri</c>: runs only RI's adaptation for a <c>merge_method: ri</c> config and writes each
/// adapted expert as an HF directory <c>OUT_DIR/&lt;model-name&gt;/</c> (its <c>config.json</c>, or the
/// base's, and <c>model.safetensors</c>: adapted vision-tower tensors in float32, every other float
/// tensor of the expert as float32, other tensors byte for byte), plus <c>OUT_DIR/ri_report.json</c>
/// (the merge-report format with the loss curves under <c>method_report.ri_runs</c>). Checkpoints go
/// to <c>ri_checkpoint_dir</c> (default <c>OUT_DIR/.ri-checkpoints</c>) and are removed once every
/// adapted expert is written.
/// </summary>
public static class RiExport
{
    /// <summary>
    /// Writes the adapted experts; returns their directories in config order. <paramref name="progress"/> sees each
    /// expert's steps. The whole output is written beside <paramref name="outDir"/> and committed in one step
    /// (<see cref="OutputCommit"/>); checkpoints live in the current <paramref name="outDir"/> while training.
    /// </summary>
    public static IReadOnlyList<string> Run(MergePlan plan, string outDir, IBackend backend, IMergeProgress? progress = null)
    {
        if (plan.Method is not RiMethod ri) throw new BadInputException($"ri: the config's merge_method must be ri, got {plan.Method.Name}");
        using var output = OutputCommit.Begin(outDir, new OutputRequest
        {
            Inputs = MergeOutput.Inputs(plan), Overwrite = plan.Options.Overwrite, PlannedBytes = PlannedBytes(plan), ModelSubdirectories = true,
        });
        var report = new MergeReport(plan, backend.Name);
        progress ??= NullProgress.Instance;
        foreach (var w in plan.Warnings) progress.Warn(w);
        var adapted = ri.Adapt(MergeRunner.PrepareContext(plan, backend, plan.Options.RandomSeed ?? 0, report.MethodReport, progress, outDir));
        var names = output.Write(staging => WriteExperts(plan, adapted, staging, report));
        output.Commit();
        ri.DeleteCheckpoints();
        return names.Select(n => Path.Combine(outDir, n)).ToList();
    }

    private static List<string> WriteExperts(MergePlan plan, Dictionary<string, float[]>[] adapted, string outDir, MergeReport report)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        var names = new List<string>();
        for (int k = 0; k < plan.Experts.Count; k++)
        {
            var src = plan.Experts[k];
            string name = Path.GetFileName(src.Path.TrimEnd('/', '\\'));
            if (File.Exists(src.Path)) name = Path.GetFileNameWithoutExtension(name);
            if (name.Length == 0 || !used.Add(name)) used.Add(name = $"{name}_{k}");
            string dir = Path.Combine(outDir, name);
            Directory.CreateDirectory(dir);
            var specs = src.Tensors.Select(t => new TensorSpec(t.Name, t.DType.IsFloat() ? DType.F32 : t.DType, t.Shape)).ToList();
            using (var w = new SafetensorsWriter(dir, specs))
            {
                foreach (var t in src.Tensors)
                {
                    if (adapted[k].TryGetValue(t.Name, out var a)) w.WriteFloat32(t.Name, a);
                    else if (t.DType.IsFloat()) w.WriteFloat32(t.Name, src.ReadFloat32(t.Name));
                    else w.Write(t.Name, src.GetBytes(t.Name));
                }
                w.Commit();
            }
            if ((src.ConfigJsonPath ?? plan.Reference.ConfigJsonPath) is { } cfg) File.Copy(cfg, Path.Combine(dir, "config.json"));
            names.Add(name);
        }
        MergeRunner.WriteAtomically(Path.Combine(outDir, "ri_report.json"), report.ToJson());
        return names;
    }

    /// <summary>Every expert's tensors (float ones as float32), its headers and config, and the report.</summary>
    private static long PlannedBytes(MergePlan plan)
    {
        long bytes = 1L << 20;
        foreach (var e in plan.Experts)
        {
            bytes += e.Tensors.Sum(t => (t.DType.IsFloat() ? t.ElementCount * 4 : t.ByteLength) + 160 + t.Name.Length);
            if ((e.ConfigJsonPath ?? plan.Reference.ConfigJsonPath) is { } c && File.Exists(c)) bytes += new FileInfo(c).Length;
        }
        return bytes;
    }
}
