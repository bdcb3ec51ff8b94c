using System.CommandLine;
using System.Globalization;
using TaskMerge.Engine.Analysis;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Cli;

/// <summary>
/// <c>taskmerge inspect MODEL</c> lists tensors; <c>taskmerge inspect --base B M1 M2 ...</c> prints
/// task-vector norms and the pairwise cosine matrix (optionally as a PNG heatmap).
/// </summary>
internal static class InspectCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var models = new Argument<string[]>("MODELS") { Description = "a model (file or HF directory), or experts with --base", Arity = ArgumentArity.OneOrMore };
        var baseOpt = new Option<string?>("--base") { Description = "base model: print task-vector norms and cosine similarities of MODELS" };
        var png = new Option<string?>("--png") { Description = "save the cosine matrix as a PNG heatmap" };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda", DefaultValueFactory = _ => "auto" };
        var cmd = new Command("inspect", "List a model's tensors, or compare task vectors") { models, baseOpt, png, device };
        cmd.SetAction(parse =>
        {
            var paths = parse.GetValue(models)!;
            string? basePath = parse.GetValue(baseOpt);
            if (basePath is null)
            {
                if (parse.GetValue(png) is not null) throw new TaskMerge.Engine.BadInputException("inspect --png draws the task-vector cosine matrix, which needs --base B and the expert models");
                if (paths.Length != 1) throw new TaskMerge.Engine.BadInputException("inspect takes one MODEL, or --base B and several models");
                using var m = ModelSource.Open(paths[0]);
                ListTensors(m, stdout);
                return 0;
            }
            using var b = ModelSource.Open(basePath);
            var experts = paths.Select(ModelSource.Open).ToList();
            try
            {
                using var backend = BackendFactory.Create(parse.GetValue(device)!, 0, out _);
                var stats = TaskVectorStats.Compute(b, experts, backend);
                PrintStats(stats, stdout);
                if (parse.GetValue(png) is { } file)
                {
                    HeatmapPng.Write(file, stats.Cosine);
                    stdout.WriteLine($"heatmap written to {file}");
                }
            }
            finally
            {
                foreach (var e in experts) e.Dispose();
            }
            return 0;
        });
        return cmd;
    }

    private static void ListTensors(ModelSource m, TextWriter o)
    {
        int w = Math.Max(4, m.Tensors.Select(t => t.Name.Length).DefaultIfEmpty(4).Max());
        o.WriteLine($"{"name".PadRight(w)}  dtype  {"shape",-20} {"bytes",14}");
        foreach (var t in m.Tensors)
            o.WriteLine($"{t.Name.PadRight(w)}  {t.DType.SafetensorsName(),-5}  {"[" + string.Join(", ", t.Shape) + "]",-20} {t.ByteLength,14:N0}");
        long elems = m.Tensors.Sum(t => t.ElementCount), bytes = m.Tensors.Sum(t => t.ByteLength);
        o.WriteLine($"{m.Tensors.Count} tensors, {elems:N0} elements, {bytes:N0} bytes ({Units.Bytes(bytes)})");
    }

    private static void PrintStats(TaskVectorStats s, TextWriter o)
    {
        o.WriteLine($"task vectors over {s.TensorsCompared} shared float tensors");
        for (int i = 0; i < s.Models.Length; i++)
            o.WriteLine($"  [{i}] ‖τ‖ = {s.Norms[i].ToString("G6", CultureInfo.InvariantCulture)}  {s.Models[i]}");
        o.WriteLine("cosine similarity:");
        o.Write("      ");
        for (int j = 0; j < s.Models.Length; j++) o.Write($"{"[" + j + "]",8}");
        o.WriteLine();
        for (int i = 0; i < s.Models.Length; i++)
        {
            o.Write($"  {"[" + i + "]",-4}");
            for (int j = 0; j < s.Models.Length; j++) o.Write(s.Cosine[i, j].ToString("F4", CultureInfo.InvariantCulture).PadLeft(8));
            o.WriteLine();
        }
    }
}
