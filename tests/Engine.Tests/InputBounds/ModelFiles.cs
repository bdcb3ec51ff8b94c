using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace TaskMerge.Engine.Tests.InputBounds;

/// <summary>Copies of the bundled zoo's models with one thing changed, for bad-input tests.</summary>
internal static class ModelFiles
{
    /// <summary>A copy of <c>zoo/NAME</c> in <paramref name="dir"/>/<paramref name="as_"/>; returns the directory.</summary>
    public static string CopyZoo(string dir, string name, string as_)
    {
        string dst = Path.Combine(dir, as_);
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(Path.Combine(BadInputAssert.Zoo, name)))
            File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
        return dst;
    }

    /// <summary>Splits a safetensors file into its header JSON and data section.</summary>
    public static (JsonObject Header, byte[] Data) Split(byte[] file)
    {
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(file, 8, (int)n))!.AsObject();
        return (header, file[(int)(8 + n)..]);
    }

    /// <summary>A safetensors file from a header text and data bytes.</summary>
    public static byte[] Join(string header, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)h.Length);
        h.CopyTo(file, 8);
        data.CopyTo(file, 8 + h.Length);
        return file;
    }

    /// <summary>Writes float <paramref name="value"/> at element <paramref name="index"/> of F32 tensor <paramref name="tensor"/> of the model in <paramref name="modelDir"/>.</summary>
    public static void PokeFloat(string modelDir, string tensor, long index, float value)
    {
        string path = Path.Combine(modelDir, "model.safetensors");
        var file = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        var (header, _) = Split(file);
        var entry = header[tensor]!.AsObject();
        Assert.Equal("F32", entry["dtype"]!.GetValue<string>());
        long begin = entry["data_offsets"]![0]!.GetValue<long>();
        BinaryPrimitives.WriteSingleLittleEndian(file.AsSpan((int)(8 + n + begin + 4 * index)), value);
        File.WriteAllBytes(path, file);
    }
}
