using System.Security.Cryptography;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Eval;

/// <summary>A zero-shot head: unit class embeddings [C, E] and the multiplier of the cosine logits.</summary>
public sealed record ZeroShotHead(float[] Weight, int Classes, int Dim, float LogitScale)
{
    /// <summary>
    /// Writes the head in <see cref="LinearHead"/>'s format: <c>weight</c> F32 [C, E] and scalar
    /// <c>logit_scale</c> F32 (the multiplier, already exponentiated), atomically.
    /// </summary>
    public void Write(string path) =>
        SafetensorsSingleFile.Write(path, [new TensorSpec("weight", DType.F32, [Classes, Dim]), new TensorSpec("logit_scale", DType.F32, [])], w =>
        {
            w.WriteFloat32("weight", Weight);
            w.WriteFloat32("logit_scale", [LogitScale]);
        });

    /// <summary>Reads a head written by <see cref="Write"/>.</summary>
    public static ZeroShotHead Read(string path)
    {
        var h = LinearHead.Load(path);
        return new ZeroShotHead(h.Weight, h.Classes, h.Dim, (float)h.Scale);
    }
}

/// <summary>
/// Zero-shot classification heads from a CLIP text tower, as FusionBench's
/// <c>CLIPClassificationMixin</c> / task-vectors' <c>get_zeroshot_classifier</c> build them: for each
/// class, the projected text embedding of every <c>template(classname)</c>, each L2-normalised, averaged
/// over the templates and normalised again; <c>logit_scale</c> = exp of the checkpoint's (1 when it has
/// none). Norms and means in float64.
/// </summary>
public static class ZeroShotHeads
{
    /// <summary>Builds the head of <paramref name="task"/>, running up to <paramref name="batchSize"/> prompts per forward.</summary>
    public static ZeroShotHead Build(ClipTextModel model, ClipTokenizer tokenizer, ZeroShotTask task, int batchSize = 256)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize));
        int templates = task.Templates.Count, dim = model.FeatureDim, context = Math.Min(ClipTokenizer.ContextLength, model.Config.MaxPositionEmbeddings);
        int total = task.Classes.Count * templates;
        var sums = new double[task.Classes.Count * dim];
        var features = new float[Math.Min(batchSize, total) * dim];
        for (int start = 0; start < total; start += batchSize)
        {
            int n = Math.Min(batchSize, total - start);
            var rows = new int[n][];
            for (int i = 0; i < n; i++)
            {
                int p = start + i;
                rows[i] = tokenizer.EncodeFramed(ZeroShotTask.Prompt(task.Templates[p % templates], task.Classes[p / templates]), context);
            }
            int t = rows.Max(r => r.Length);
            var ids = new int[n * t];
            for (int i = 0; i < n; i++) rows[i].CopyTo(ids, i * t);
            using (var o = model.Forward(ids, n))
            {
                var emb = o.TextEmbeds ?? o.PoolerOutput;
                emb.Backend.Download(emb, features.AsSpan(0, n * dim));
            }
            for (int i = 0; i < n; i++)
            {
                var f = features.AsSpan(i * dim, dim);
                double norm = Math.Sqrt(SquaredNorm(f));
                if (!(norm > 0)) throw new BadInputException($"task {task.Name}: the text embedding of {Q(ZeroShotTask.Prompt(task.Templates[(start + i) % templates], task.Classes[(start + i) / templates]))} is zero or not finite");
                int c = (start + i) / templates;
                for (int e = 0; e < dim; e++) sums[c * dim + e] += f[e] / norm;
            }
        }
        var weight = new float[sums.Length];
        for (int c = 0; c < task.Classes.Count; c++)
        {
            double norm = 0;
            for (int e = 0; e < dim; e++) norm += sums[c * dim + e] / templates * (sums[c * dim + e] / templates);
            norm = Math.Sqrt(norm);
            for (int e = 0; e < dim; e++) weight[c * dim + e] = (float)(sums[c * dim + e] / templates / norm);
        }
        return new ZeroShotHead(weight, task.Classes.Count, dim, (float)Math.Exp(model.LogitScale ?? 0));
    }

    /// <summary>
    /// The head of <paramref name="task"/> for the text tower in <paramref name="modelPath"/>, from
    /// <paramref name="cacheDirectory"/> when a head with the same key is there, else built (tokenizer
    /// files from <paramref name="tokenizerDirectory"/>, default the model directory) and stored. The key
    /// is <see cref="Fingerprint"/>; an unreadable entry is rebuilt and overwritten; null
    /// <paramref name="cacheDirectory"/> disables the cache.
    /// </summary>
    public static (ZeroShotHead Head, bool FromCache) GetOrBuild(string modelPath, IBackend backend, ZeroShotTask task, string? cacheDirectory,
        string? tokenizerDirectory = null, int batchSize = 256)
    {
        using var source = ModelSource.Open(modelPath);
        string tokDir = tokenizerDirectory ?? source.Directory
            ?? throw new BadInputException($"{P(modelPath)}: a single .safetensors file has no tokenizer files; give the tokenizer directory");
        var tokenizer = ClipTokenizer.Load(tokDir);
        var config = source.ConfigJsonPath is { } cp ? ClipTextConfig.Load(cp) : ClipTextNames.Detect(source).Infer(source);
        string? cached = null;
        if (cacheDirectory is not null)
        {
            cached = Path.Combine(cacheDirectory, Fingerprint(source, config, tokenizer, task) + ".safetensors");
            if (File.Exists(cached) && TryRead(cached, task.Classes.Count) is { } hit) return (hit, true);
        }
        using var model = ClipTextModel.Load(source, backend, config);
        var head = Build(model, tokenizer, task, batchSize);
        if (cached is not null)
        {
            Directory.CreateDirectory(cacheDirectory!);
            head.Write(cached);
        }
        return (head, false);
    }

    /// <summary>
    /// Hex SHA-256 of what determines a head: the text config, the name, dtype, shape and bytes of every
    /// text-tower tensor (and <c>logit_scale</c>), the tokenizer files, and the task's classes and templates.
    /// </summary>
    public static string Fingerprint(ModelSource source, ClipTextConfig config, ClipTokenizer tokenizer, ZeroShotTask task)
    {
        var names = ClipTextNames.Detect(source);
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Text(string s) => h.AppendData(System.Text.Encoding.UTF8.GetBytes(s + "\n"));
        Text("taskmerge-zero-shot-head-1");
        Text(config.ToString());
        foreach (var t in source.Tensors.Where(t => names.IsTextTensor(t.Name)).OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            Text($"{t.Name} {t.DType.SafetensorsName()} {t.ShapeString}");
            h.AppendData(source.GetBytes(t.Name));
        }
        Text(tokenizer.Identity);
        Text(task.Name);
        foreach (var c in task.Classes) Text("class " + c);
        foreach (var t in task.Templates) Text("template " + t);
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>A cached head, or null when the file is unreadable or not of <paramref name="classes"/> classes (then it is rebuilt and overwritten).</summary>
    private static ZeroShotHead? TryRead(string path, int classes)
    {
        try
        {
            var head = ZeroShotHead.Read(path);
            return head.Classes == classes ? head : null;
        }
        catch (BadInputException)
        {
            return null;
        }
    }

    private static double SquaredNorm(ReadOnlySpan<float> f)
    {
        double s = 0;
        foreach (float v in f) s += (double)v * v;
        return s;
    }
}
