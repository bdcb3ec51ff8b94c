using System.Text.Json;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>
/// The weights of one model: a single <c>.safetensors</c> file, a Hugging Face directory holding
/// <c>model.safetensors</c>, or shards listed by <c>model.safetensors.index.json</c>. Every file
/// (and the index) is validated on <see cref="Open"/>. Reads are thread-safe.
/// </summary>
public sealed partial class ModelSource : IDisposable
{
    /// <summary>File name of a single-file model in a Hugging Face directory.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>File name of the shard index in a Hugging Face directory.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly SafetensorsFile[] _files;
    private readonly TensorInfo[] _tensors;
    private readonly Dictionary<string, (SafetensorsFile File, TensorInfo Info)> _byName;

    private ModelSource(string path, string? directory, string? configJsonPath, string? indexPath,
        SafetensorsFile[] files)
    {
        Path = path;
        Directory = directory;
        ConfigJsonPath = configJsonPath;
        IndexPath = indexPath;
        _files = files;
        var tensors = new List<TensorInfo>();
        _byName = new Dictionary<string, (SafetensorsFile, TensorInfo)>(StringComparer.Ordinal);
        long total = 0;
        foreach (var f in files)
        {
            var sorted = f.Tensors.ToArray();
            // Stable sort by data offset (zero-size tensors sharing an offset keep header order).
            var keyed = sorted.Select((t, i) => (t, i)).OrderBy(x => x.t.Begin).ThenBy(x => x.t.End).ThenBy(x => x.i);
            foreach (var (t, _) in keyed)
            {
                tensors.Add(t);
                _byName.Add(t.Name, (f, t));
                total += t.ByteLength;
            }
        }
        _tensors = tensors.ToArray();
        TotalBytes = total;
    }

    /// <summary>The path the model was opened with (a file or a directory).</summary>
    public string Path { get; }

    /// <summary>The model directory when <see cref="Path"/> is a directory; null for a plain file.</summary>
    public string? Directory { get; }

    /// <summary>The directory's <c>config.json</c> when <see cref="Path"/> is a directory that has one; else null.</summary>
    public string? ConfigJsonPath { get; }

    /// <summary>The <c>model.safetensors.index.json</c> in use for a sharded model; else null.</summary>
    public string? IndexPath { get; }

    /// <summary>The safetensors files, in shard order.</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <summary>
    /// All tensors: for a single file in data-offset order (the order writers lay them out);
    /// for shards, shard by shard (in file-name order), each in data-offset order.
    /// </summary>
    public IReadOnlyList<TensorInfo> Tensors => _tensors;

    /// <summary>Sum of the byte lengths of all tensors.</summary>
    public long TotalBytes { get; }

    /// <summary>Looks a tensor up by name.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="info">The tensor's entry when found.</param>
    /// <returns>True when the model has a tensor of that name.</returns>
    public bool TryGet(string name, out TensorInfo info)
    {
        if (_byName.TryGetValue(name, out var e)) { info = e.Info; return true; }
        info = null!;
        return false;
    }

    /// <summary>True when the model has a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The tensor named <paramref name="name"/>; <see cref="BadInputException"/> when absent.</summary>
    public TensorInfo Get(string name) => Lookup(name).Info;

    /// <summary>The file that holds the tensor named <paramref name="name"/>.</summary>
    public SafetensorsFile GetFile(string name) => Lookup(name).File;

    private (SafetensorsFile File, TensorInfo Info) Lookup(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out var e) ? e : throw new BadInputException($"{P(Path)}: tensor {Q(name)} not found");
    }

    /// <summary>Decodes a floating-point tensor (F32, F16, BF16, F64) into float32.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="dst">Destination of exactly the tensor's element count.</param>
    public void ReadFloat32(string name, Span<float> dst)
    {
        var (f, t) = Lookup(name);
        f.ReadFloat32(t, dst);
    }

    /// <summary>
    /// Decodes a floating-point tensor into float32 and checks every value in the same pass: a NaN or ±Inf is a
    /// <see cref="BadInputException"/> naming the model, the tensor and the first index.
    /// </summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="dst">Destination of exactly the tensor's element count.</param>
    public void ReadFloat32Finite(string name, Span<float> dst)
    {
        long bad = ReadFloat32FindNonFinite(name, 0, dst);
        if (bad >= 0) throw NonFiniteError(name, bad);
    }

    /// <summary>Decodes elements [<paramref name="offset"/>, offset + <c>dst.Length</c>) and returns the tensor index of the first NaN/±Inf, or −1.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="offset">First element decoded.</param>
    /// <param name="dst">Destination; its length is the number of elements decoded.</param>
    public long ReadFloat32FindNonFinite(string name, long offset, Span<float> dst)
    {
        var (f, t) = Lookup(name);
        return f.ReadFloat32FindNonFinite(t, offset, dst);
    }

    /// <summary>The bad-input error for the non-finite value at flat <paramref name="index"/> of tensor <paramref name="name"/>.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="index">Flat index of a NaN/±Inf found by <see cref="ReadFloat32FindNonFinite"/>.</param>
    public BadInputException NonFiniteError(string name, long index)
    {
        var (f, t) = Lookup(name);
        Span<float> one = stackalloc float[1];
        f.ReadFloat32(t, index, one);
        float value = one[0];
        var coords = new long[t.Shape.Length];
        long rest = index;
        for (int d = coords.Length - 1; d >= 0; d--)
        {
            long dim = Math.Max(1, t.Shape[d]);
            coords[d] = rest % dim;
            rest /= dim;
        }
        string what = float.IsNaN(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf";
        return new BadInputException(
            $"{P(Path)}: tensor {Q(t.Name)} holds a non-finite value ({what}) at index {index} [{string.Join(", ", coords)}]; " +
            "merging it would spread it through the result (--allow-nonfinite merges it anyway)");
    }

    /// <summary>Decodes elements [<paramref name="offset"/>, offset + <c>dst.Length</c>) of a floating-point tensor into float32.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="offset">First element decoded.</param>
    /// <param name="dst">Destination; its length is the number of elements decoded.</param>
    public void ReadFloat32(string name, long offset, Span<float> dst)
    {
        var (f, t) = Lookup(name);
        f.ReadFloat32(t, offset, dst);
    }

    /// <summary>Drops a consumed tensor's mapped pages from the process (and with <paramref name="evict"/> from the page cache); see <see cref="SafetensorsFile.ReleasePages"/>.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="evict">Also drop the pages from the page cache.</param>
    public void ReleasePages(string name, bool evict)
    {
        var (f, t) = Lookup(name);
        f.ReleasePages(t, evict);
    }

    /// <summary>Decodes a floating-point tensor into a new float32 array.</summary>
    /// <param name="name">Tensor name.</param>
    public float[] ReadFloat32(string name)
    {
        var (f, t) = Lookup(name);
        return f.ReadFloat32(t);
    }

    /// <summary>The raw bytes of a tensor (a view of the mapped file, valid until <see cref="Dispose"/>).</summary>
    /// <param name="name">Tensor name.</param>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var (f, t) = Lookup(name);
        return f.GetBytes(t);
    }

    /// <summary>Copies <c>dst.Length</c> raw bytes of a tensor, starting <paramref name="offset"/> bytes into it.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="offset">Byte offset inside the tensor.</param>
    /// <param name="dst">Destination; its length is the number of bytes copied.</param>
    public void CopyBytes(string name, long offset, Span<byte> dst)
    {
        var (f, t) = Lookup(name);
        f.CopyBytes(t, offset, dst);
    }

    /// <summary>
    /// Opens a model: a <c>.safetensors</c> file, a directory with <c>model.safetensors</c>, or a
    /// directory with <c>model.safetensors.index.json</c> (or that index file itself). Problems
    /// (missing path, pickle-only checkpoint, corrupt file, inconsistent index) raise
    /// <see cref="BadInputException"/>.
    /// </summary>
    /// <param name="path">File or directory.</param>
    public static ModelSource Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string p = P(path);
        if (path.Length == 0) throw new BadInputException("model path is empty");

        if (File.Exists(path))
        {
            if (path.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase))
            {
                if (path.EndsWith(".bin.index.json", StringComparison.OrdinalIgnoreCase))
                    throw PickleOnly(p);
                string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
                return OpenSharded(path, dir, path, ConfigIn(dir));
            }
            if (SafetensorsFile.LooksLikePickle(path)) throw PickleOnly(p);
            var f = SafetensorsFile.Open(path);
            return new ModelSource(path, null, null, null, [f]);
        }

        if (System.IO.Directory.Exists(path))
        {
            string single = System.IO.Path.Combine(path, SingleFileName);
            string index = System.IO.Path.Combine(path, IndexFileName);
            if (File.Exists(single))
                return new ModelSource(path, path, ConfigIn(path), null, [SafetensorsFile.Open(single)]);
            if (File.Exists(index))
                return OpenSharded(path, path, index, ConfigIn(path));
            if (File.Exists(System.IO.Path.Combine(path, "pytorch_model.bin")) ||
                File.Exists(System.IO.Path.Combine(path, "pytorch_model.bin.index.json")))
                throw new BadInputException(
                    $"{p}: holds only a PyTorch pickle checkpoint (pytorch_model.bin); only safetensors is supported; convert it to model.safetensors first (e.g. load with transformers and save_pretrained(..., safe_serialization=True))");
            throw new BadInputException($"{p}: directory has no {SingleFileName} or {IndexFileName}");
        }

        throw new BadInputException($"{p}: no such file or directory");
    }

    private static BadInputException PickleOnly(string p) => new(
        $"{p}: PyTorch pickle checkpoints are not loaded; only safetensors is supported; convert it to .safetensors first");

    private static string? ConfigIn(string dir)
    {
        string c = System.IO.Path.Combine(dir, "config.json");
        return File.Exists(c) ? c : null;
    }

    private static ModelSource OpenSharded(string path, string dir, string indexPath, string? config)
    {
        string ip = P(indexPath);
        var weightMap = ReadWeightMap(ip, indexPath);

        // Shard files in file-name order.
        var shardNames = weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var opened = new List<SafetensorsFile>();
        try
        {
            var nameToFile = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (string shard in shardNames)
            {
                if (shard.Length == 0 || System.IO.Path.IsPathRooted(shard) || shard.Contains('/') || shard.Contains('\\') || shard is "." or "..")
                    throw new BadInputException($"{ip}: weight_map shard {Q(shard)} must be a plain file name in the same directory");
                string full = System.IO.Path.Combine(dir, shard);
                if (!File.Exists(full))
                    throw new BadInputException($"{ip}: shard {Q(shard)} listed in weight_map does not exist");
                var f = SafetensorsFile.Open(full);
                opened.Add(f);
                nameToFile.Add(shard, f);
            }

            CheckNoUnreferencedShards(ip, dir, shardNames);

            var owner = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (string shard in shardNames)
            {
                var f = nameToFile[shard];
                foreach (var t in f.Tensors)
                {
                    if (owner.TryGetValue(t.Name, out string? other))
                        throw new BadInputException($"{ip}: tensor {Q(t.Name)} is present in two shards, {Q(other)} and {Q(shard)}");
                    owner.Add(t.Name, shard);
                    if (!weightMap.TryGetValue(t.Name, out string? mapped))
                        throw new BadInputException($"{ip}: tensor {Q(t.Name)} of shard {Q(shard)} is missing from weight_map");
                    if (mapped != shard)
                        throw new BadInputException($"{ip}: weight_map puts tensor {Q(t.Name)} in {Q(mapped)} but it is in shard {Q(shard)}");
                }
            }
            foreach (var (name, shard) in weightMap)
            {
                if (!nameToFile[shard].Contains(name))
                    throw new BadInputException($"{ip}: weight_map lists tensor {Q(name)} in shard {Q(shard)}, which does not hold it");
            }
            return new ModelSource(path, dir, config, indexPath, opened.ToArray());
        }
        catch
        {
            foreach (var f in opened) f.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A shard file of the same <c>model-i-of-N</c> series that weight_map never mentions would
    /// silently drop its tensors; treat it as an inconsistent index.
    /// </summary>
    private static void CheckNoUnreferencedShards(string ip, string dir, string[] shardNames)
    {
        var referenced = new HashSet<string>(shardNames, StringComparer.Ordinal);
        foreach (string shard in shardNames)
        {
            var m = ShardPattern().Match(shard);
            if (!m.Success) continue;
            string prefix = m.Groups[1].Value, total = m.Groups[3].Value, ext = m.Groups[4].Value;
            int width = m.Groups[2].Value.Length;
            if (!int.TryParse(total, out int n) || n > 100_000) continue;
            for (int i = 1; i <= n; i++)
            {
                string name = $"{prefix}{i.ToString().PadLeft(width, '0')}-of-{total}{ext}";
                if (!referenced.Contains(name) && File.Exists(System.IO.Path.Combine(dir, name)))
                    throw new BadInputException($"{ip}: shard {Q(name)} is in the directory but weight_map does not list any of its tensors");
            }
            return;
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^(.*-)(\d+)-of-(\d+)(\.safetensors)$")]
    private static partial System.Text.RegularExpressions.Regex ShardPattern();

    private static Dictionary<string, string> ReadWeightMap(string ip, string indexPath)
    {
        byte[] bytes = ReadAllBytes(indexPath, ip);
        JsonSurrogates.Check(bytes, ip);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{ip}: not valid JSON: {OneLine(e.Message)}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new BadInputException($"{ip}: index must be a JSON object");
            JsonElement? wm = null;
            foreach (var prop in root.EnumerateObject())
            {
                if (prop.Name != "weight_map") continue;
                if (wm is not null) throw new BadInputException($"{ip}: duplicate key 'weight_map'");
                wm = prop.Value;
            }
            if (wm is null) throw new BadInputException($"{ip}: missing 'weight_map'");
            if (wm.Value.ValueKind != JsonValueKind.Object)
                throw new BadInputException($"{ip}: 'weight_map' must be an object of tensor name to shard file");
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var kv in wm.Value.EnumerateObject())
            {
                if (kv.Value.ValueKind != JsonValueKind.String)
                    throw new BadInputException($"{ip}: weight_map entry {Q(kv.Name)} must be a shard file name (string)");
                if (!map.TryAdd(kv.Name, kv.Value.GetString()!))
                    throw new BadInputException($"{ip}: duplicate tensor name {Q(kv.Name)} in weight_map");
            }
            if (map.Count == 0) throw new BadInputException($"{ip}: 'weight_map' is empty (the index lists no tensors)");
            return map;
        }
    }

    /// <summary>Closes every file of the model.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
