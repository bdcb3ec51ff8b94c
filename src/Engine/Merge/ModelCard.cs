using System.Text;
using System.Text.RegularExpressions;
using TaskMerge.Engine.Config;

namespace TaskMerge.Engine.Merge;

/// <summary>
/// The model card <c>README.md</c> written beside a merge, laid out as mergekit's: YAML front matter
/// (<c>base_model</c>: the referenced models that are Hugging Face hub ids, <c>library_name: transformers</c>,
/// <c>tags: [merge, taskmerge]</c>), the method, the models, and the config in a yaml block.
/// </summary>
public static partial class ModelCard
{
    /// <summary>The card's text for <paramref name="config"/>, titled <paramref name="name"/>.</summary>
    public static string Generate(MergeConfig config, string name)
    {
        var referenced = new List<string>();
        if (config.BaseModel is { } b) referenced.Add(b);
        foreach (var m in config.Models) if (!referenced.Contains(m.Model)) referenced.Add(m.Model);
        var hubIds = referenced.Where(IsHubId).ToList();
        // As mergekit: a slerp base is one of the two interpolated models, so it is listed with them.
        string? actualBase = config.MergeMethod == "slerp" ? null : config.BaseModel;

        var sb = new StringBuilder();
        sb.Append("---\n");
        if (hubIds.Count == 0) sb.Append("base_model: []\n");
        else
        {
            sb.Append("base_model:\n");
            foreach (var id in hubIds) sb.Append("- ").Append(id).Append('\n');
        }
        sb.Append("library_name: transformers\ntags:\n- merge\n- taskmerge\n---\n\n");
        sb.Append("# ").Append(name).Append("\n\n");
        sb.Append("This is a merge of pre-trained models created with TaskMerge.\n\n");
        sb.Append("## Merge Details\n\n### Merge Method\n\n");
        sb.Append("This model was merged using the ").Append(config.MergeMethod).Append(" merge method");
        if (actualBase is not null) sb.Append(" using ").Append(Link(actualBase)).Append(" as a base");
        sb.Append(".\n\n### Models Merged\n\nThe following models were included in the merge:\n");
        foreach (var m in referenced.Where(m => m != actualBase)) sb.Append("* ").Append(Link(m)).Append('\n');
        sb.Append("\n### Configuration\n\nThe following YAML configuration was used to produce this model:\n\n```yaml\n");
        sb.Append(config.Text.TrimEnd()).Append("\n```\n");
        return sb.ToString();
    }

    /// <summary>A reference in hub-id form (<c>org/name</c>, optionally <c>@revision</c>) that is not a local path.</summary>
    private static bool IsHubId(string reference) =>
        HubIdPattern().IsMatch(reference) && !File.Exists(reference) && !Directory.Exists(reference);

    private static string Link(string reference) => IsHubId(reference) ? $"[{reference}](https://huggingface.co/{reference.Split('@')[0]})" : reference;

    [GeneratedRegex(@"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")]
    private static partial Regex HubIdPattern();
}
