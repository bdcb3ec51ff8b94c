using System.Buffers.Binary;
using System.Text;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Tests.IO;

/// <summary>A fresh temporary directory, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "taskmerge-io-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public string[] FileNames() =>
        Directory.GetFiles(Path).Select(f => System.IO.Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray();

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}

internal static class IOTestUtil
{
    /// <summary>Deterministic pseudo-random bytes for a tensor.</summary>
    public static byte[] Bytes(long n, int seed)
    {
        var rng = new Random(seed);
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    /// <summary>Deterministic valid bytes for a dtype (finite floats, 0/1 for BOOL).</summary>
    public static byte[] ValidBytes(DType t, long count, int seed)
    {
        var rng = new Random(seed);
        var b = new byte[count * t.Size()];
        switch (t)
        {
            case DType.Bool:
                for (int i = 0; i < b.Length; i++) b[i] = (byte)rng.Next(2);
                break;
            case DType.F32 or DType.F16 or DType.BF16 or DType.F64:
            {
                var f = new float[count];
                for (int i = 0; i < f.Length; i++) f[i] = (float)(rng.NextDouble() * 4 - 2);
                FloatConvert.FromFloat(t, f, b);
                break;
            }
            default:
                rng.NextBytes(b);
                break;
        }
        return b;
    }

    /// <summary>Writes a safetensors file by hand from a header string and data (no padding, any N).</summary>
    public static void WriteRaw(string path, string header, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)h.Length);
        using var fs = File.Create(path);
        fs.Write(len);
        fs.Write(h);
        fs.Write(data);
    }

    /// <summary>Writes a model with the writer: every tensor gets <see cref="ValidBytes"/> with seed = index.</summary>
    public static Dictionary<string, byte[]> WriteModel(string dir, IReadOnlyList<TensorSpec> specs, long maxShard = SafetensorsWriter.DefaultMaxShardBytes)
    {
        var data = new Dictionary<string, byte[]>();
        using var w = new SafetensorsWriter(dir, specs, maxShard);
        for (int i = 0; i < specs.Count; i++)
        {
            var b = ValidBytes(specs[i].DType, specs[i].ElementCount, i + 1);
            data[specs[i].Name] = b;
            w.Write(specs[i].Name, b);
        }
        w.Commit();
        return data;
    }
}
