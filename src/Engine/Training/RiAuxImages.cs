using TaskMerge.Engine.Eval;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Training;

/// <summary>Unlabeled auxiliary images, fetched by index as normalised pixels [n, 3, S, S].</summary>
internal interface IRiAuxImages : IDisposable
{
    /// <summary>Images available.</summary>
    int Count { get; }

    /// <summary>Pixels of the images at <paramref name="indices"/>, in that order.</summary>
    float[] Pixels(IReadOnlyList<int> indices);

    /// <summary>A string that changes when the images change (part of the checkpoint fingerprint).</summary>
    string Identity { get; }
}

/// <summary>Auxiliary image sources: in memory, an image-folder tree, or a safetensors <c>pixel_values</c> file.</summary>
internal static class RiAuxImages
{
    /// <summary>Images held in memory: <paramref name="pixels"/> = [count, 3, S, S] flattened.</summary>
    public static IRiAuxImages InMemory(float[] pixels, int count) => new Memory(pixels, count);

    /// <summary>
    /// A directory = image-folder tree (<see cref="ImageFolderDataset"/>, labels ignored); a file =
    /// safetensors with <c>pixel_values</c> [N, 3, S, S] float (labels not needed).
    /// </summary>
    public static IRiAuxImages Open(string path, ImagePreprocessor preprocessor, int parallelism)
    {
        if (Directory.Exists(path)) return new Folder(ImageFolderDataset.Open(path, preprocessor, parallelism));
        if (!File.Exists(path)) throw new BadInputException($"{P(path)}: no such file or directory (aux_data must be an image-folder tree or a .safetensors file with pixel_values)");
        var f = SafetensorsFile.Open(path);
        try
        {
            int size = preprocessor.Size;
            if (!f.TryGet("pixel_values", out var px)) throw new BadInputException($"{P(path)}: tensor \"pixel_values\" not found (expected pixel_values [N, 3, {size}, {size}])");
            if (px.Rank != 4 || px.Shape[1] != 3 || px.Shape[2] != size || px.Shape[3] != size || !px.DType.IsFloat() || px.Shape[0] < 1)
                throw new BadInputException($"{P(path)}: pixel_values is {px.DType.SafetensorsName()} {px.ShapeString}, the model needs float [N ≥ 1, 3, {size}, {size}]");
            int count = checked((int)px.Shape[0]);
            var all = f.ReadFloat32(px);
            f.Dispose();
            return new Memory(all, count);
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    private sealed class Memory(float[] pixels, int count) : IRiAuxImages
    {
        private readonly int _per = pixels.Length / Math.Max(1, count);
        private string? _identity;
        public int Count => count;

        public string Identity => _identity ??= $"pixels {count} sha256 {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(pixels.AsSpan())))}";

        public float[] Pixels(IReadOnlyList<int> indices)
        {
            var o = new float[indices.Count * _per];
            for (int k = 0; k < indices.Count; k++) pixels.AsSpan(indices[k] * _per, _per).CopyTo(o.AsSpan(k * _per, _per));
            return o;
        }

        public void Dispose() { }
    }

    private sealed class Folder(ImageFolderDataset data) : IRiAuxImages
    {
        private string? _identity;
        public int Count => data.Count;

        public string Identity => _identity ??= data.ContentIdentity();

        public float[] Pixels(IReadOnlyList<int> indices)
        {
            var parts = indices.Select(i => data.Batch(i, 1).Pixels).ToArray();
            int per = parts.Length == 0 ? 0 : parts[0].Length;
            var o = new float[parts.Length * per];
            for (int k = 0; k < parts.Length; k++) parts[k].CopyTo(o, k * per);
            return o;
        }

        public void Dispose() => data.Dispose();
    }
}
