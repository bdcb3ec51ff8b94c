using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Merge;

/// <summary>What a merge's output directory must not touch, and how many bytes the output needs.</summary>
internal static class MergeOutput
{
    /// <summary>Bytes of the model card, config copy, merge report and safetensors headers beyond the tensor data (an upper bound for small outputs).</summary>
    private const long FixedOverhead = 1 << 20;

    /// <summary>The <see cref="OutputRequest"/> of <paramref name="plan"/>'s merge.</summary>
    public static OutputRequest Request(MergePlan plan) => new()
    {
        Inputs = Inputs(plan),
        Overwrite = plan.Options.Overwrite,
        PlannedBytes = PlannedBytes(plan),
        OwnFiles = ["taskmerge_config.yml", "README.md", .. MergeRunner.TagalongFiles],
    };

    /// <summary>
    /// Every path the merge reads: the config file, the base and every model (with their weight and config files,
    /// which may be symlinks elsewhere, as in the Hugging Face cache), and every parameter value naming an existing
    /// file or directory (RI's <c>head</c>s and <c>aux_data</c>), except work directories (<c>*_dir</c>).
    /// </summary>
    public static IReadOnlyList<OutputInput> Inputs(MergePlan plan)
    {
        var config = plan.Config;
        var inputs = new List<OutputInput> { new(config.Path, "config") };
        if (config.BaseModelPath is not null) inputs.Add(new(config.BaseModelPath, "base_model"));
        foreach (var m in config.Models) inputs.Add(new(m.ResolvedPath, "model"));
        foreach (var source in plan.Experts.Append(plan.Reference))
        {
            inputs.AddRange(source.Files.Select(f => new OutputInput(f.Path, "model file")));
            if (source.ConfigJsonPath is not null) inputs.Add(new(source.ConfigJsonPath, "model config"));
        }
        string configDir = Path.GetDirectoryName(Path.GetFullPath(config.Path))!;
        foreach (var parameters in config.Models.Select(m => m.Parameters).Append(config.Parameters))
            foreach (var (name, setting) in parameters)
                if (!name.EndsWith("_dir", StringComparison.Ordinal) && setting is ScalarSetting { Text: { Length: > 0 } text } && !text.Contains('\0'))
                {
                    string path = MergeConfig.Resolve(text, configDir);
                    if (File.Exists(path) || Directory.Exists(path)) inputs.Add(new(path, name));
                }
        return inputs;
    }

    /// <summary>Tensor data as written (output dtypes), plus every safetensors header and the small files.</summary>
    public static long PlannedBytes(MergePlan plan)
    {
        long bytes = FixedOverhead;
        foreach (var t in plan.Tensors)
            bytes += t.Shape.Aggregate(1L, (a, d) => a * d) * t.OutDType.Size() + 160 + t.Name.Length;
        if (plan.Reference.ConfigJsonPath is { } cfg && File.Exists(cfg)) bytes += new FileInfo(cfg).Length;
        if (plan.Options.CopyTokenizer && plan.Reference.Directory is { } dir)
            foreach (var name in MergeRunner.TagalongFiles)
                if (new FileInfo(Path.Combine(dir, name)) is { Exists: true } f) bytes += f.Length;
        return bytes;
    }
}
