using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Eval;

/// <summary>Labelled images served in batches of preprocessed pixels.</summary>
public interface IImageDataset : IDisposable
{
    /// <summary>Where the data comes from, for messages.</summary>
    string Origin { get; }

    /// <summary>Examples.</summary>
    int Count { get; }

    /// <summary>Classes the data defines (folders), or null when only labels are known (tensor files).</summary>
    int? ClassCount { get; }

    /// <summary>
    /// Examples [start, start + count) as pixels [count, 3, S, S] (channels first, normalised) and labels.
    /// </summary>
    (float[] Pixels, int[] Labels) Batch(int start, int count);
}

/// <summary>Opens DATA of an image task: a class-folder tree or a safetensors tensor file.</summary>
public static class ImageDatasets
{
    /// <summary>
    /// A directory is read as <c>root/&lt;class&gt;/&lt;image&gt;</c> (classes in ordinal-sorted order, as
    /// torchvision's ImageFolder); a file as safetensors with <c>pixel_values</c> and <c>labels</c>.
    /// </summary>
    public static IImageDataset Open(string path, ImagePreprocessor preprocessor, int parallelism) =>
        Directory.Exists(path) ? ImageFolderDataset.Open(path, preprocessor, parallelism)
        : File.Exists(path) ? TensorFileDataset.Open(path, preprocessor.Size)
        : throw new BadInputException($"{P(path)}: no such file or directory (DATA must be an image-folder tree or a .safetensors file)");
}

/// <summary>
/// <c>root/&lt;class&gt;/*.png|jpg|jpeg|bmp|gif|ppm|pgm|tga</c>: class index = position of the folder in
/// ordinal-sorted order; images within a class in ordinal-sorted order. Images are decoded and
/// preprocessed in parallel when a batch is requested.
/// </summary>
public sealed class ImageFolderDataset : IImageDataset
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".pnm", ".tga",
    };

    private readonly (string Path, int Label)[] _items;
    private readonly ImagePreprocessor _pre;
    private readonly int _parallelism;

    private ImageFolderDataset(string root, string[] classes, (string, int)[] items, ImagePreprocessor pre, int parallelism)
    {
        (Origin, Classes, _items, _pre, _parallelism) = (P(root), classes, items, pre, Math.Max(1, parallelism));
    }

    /// <inheritdoc />
    public string Origin { get; }

    /// <summary>Class folder names in label order.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <inheritdoc />
    public int Count => _items.Length;

    /// <inheritdoc />
    public int? ClassCount => Classes.Count;

    /// <summary>Scans <paramref name="root"/>; no class folders or no images is bad input.</summary>
    public static ImageFolderDataset Open(string root, ImagePreprocessor pre, int parallelism)
    {
        var classes = Directory.GetDirectories(root).Select(Path.GetFileName).Where(n => n is not null && !n.StartsWith('.')).Select(n => n!)
            .Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0) throw new BadInputException($"{P(root)}: no class folders (expected root/<class>/<image>)");
        var items = new List<(string, int)>();
        for (int c = 0; c < classes.Length; c++)
            foreach (var f in Directory.GetFiles(Path.Combine(root, classes[c])).Where(f => Extensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal))
                items.Add((f, c));
        if (items.Count == 0) throw new BadInputException($"{P(root)}: the class folders hold no images (.png, .jpg, .jpeg, .bmp, .gif, .ppm, .pgm, .tga)");
        return new ImageFolderDataset(root, classes, items.ToArray(), pre, parallelism);
    }

    /// <summary>
    /// A string that changes when the images or their preprocessing change: file names, sizes and
    /// modification times (contents are not read), and the preprocessor's size, crop and normalisation.
    /// </summary>
    internal string ContentIdentity()
    {
        var sb = new System.Text.StringBuilder(FormattableString.Invariant($"folder {_pre.Size} {_pre.Crop} {string.Join(",", _pre.Mean.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))} {string.Join(",", _pre.Std.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}\n"));
        foreach (var (path, label) in _items)
        {
            var info = new FileInfo(path);
            sb.Append(FormattableString.Invariant($"{label} {Path.GetFileName(path)} {info.Length} {info.LastWriteTimeUtc.Ticks}\n"));
        }
        return $"{_items.Length} images sha256 {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(sb.ToString())))}";
    }

    /// <inheritdoc />
    public (float[] Pixels, int[] Labels) Batch(int start, int count)
    {
        int per = 3 * _pre.Size * _pre.Size;
        var pixels = new float[count * per];
        var labels = new int[count];
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = _parallelism }, i =>
        {
            var (path, label) = _items[start + i];
            _pre.Process(ImagePreprocessor.Decode(path), pixels.AsSpan(i * per, per));
            labels[i] = label;
        });
        return (pixels, labels);
    }

    /// <inheritdoc />
    public void Dispose() { }
}

/// <summary>
/// A safetensors file with <c>pixel_values</c> [N, 3, S, S] (float, already normalised) and
/// <c>labels</c> [N] (integer), the route for exact agreement with a Python pipeline.
/// </summary>
public sealed class TensorFileDataset : IImageDataset
{
    private readonly SafetensorsFile _file;
    private readonly TensorInfo _pixels;
    private readonly int[] _labels;
    private readonly int _per;

    private TensorFileDataset(SafetensorsFile file, TensorInfo pixels, int[] labels)
    {
        (_file, _pixels, _labels) = (file, pixels, labels);
        _per = checked((int)(pixels.Shape[1] * pixels.Shape[2] * pixels.Shape[3]));
    }

    /// <inheritdoc />
    public string Origin => P(_file.Path);

    /// <inheritdoc />
    public int Count => _labels.Length;

    /// <inheritdoc />
    public int? ClassCount => null;

    /// <summary>The labels of every example.</summary>
    public IReadOnlyList<int> Labels => _labels;

    /// <summary>Opens and validates the file against the model's input side <paramref name="size"/>.</summary>
    public static TensorFileDataset Open(string path, int size)
    {
        var f = SafetensorsFile.Open(path);
        try
        {
            if (!f.TryGet("pixel_values", out var px)) throw new BadInputException($"{P(path)}: tensor \"pixel_values\" not found (expected pixel_values [N, 3, {size}, {size}] and labels [N])");
            if (!f.TryGet("labels", out var lb)) throw new BadInputException($"{P(path)}: tensor \"labels\" not found (expected pixel_values [N, 3, {size}, {size}] and labels [N])");
            if (px.Rank != 4 || px.Shape[1] != 3 || px.Shape[2] != size || px.Shape[3] != size || !px.DType.IsFloat())
                throw new BadInputException($"{P(path)}: pixel_values is {px.DType.SafetensorsName()} {px.ShapeString}, the model needs float [N, 3, {size}, {size}]");
            if (lb.Rank != 1 || lb.Shape[0] != px.Shape[0])
                throw new BadInputException($"{P(path)}: labels has shape {lb.ShapeString}, expected [{px.Shape[0]}] (one per image)");
            return new TensorFileDataset(f, px, IntegerTensors.ReadInt32(f, lb));
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public (float[] Pixels, int[] Labels) Batch(int start, int count)
    {
        var all = new float[count * _per];
        int size = _pixels.DType.Size();
        var bytes = new byte[(long)count * _per * size];
        _file.CopyBytes(_pixels, (long)start * _per * size, bytes);
        FloatConvert.ToFloat(_pixels.DType, bytes, all);
        return (all, _labels.AsSpan(start, count).ToArray());
    }

    /// <inheritdoc />
    public void Dispose() => _file.Dispose();
}
