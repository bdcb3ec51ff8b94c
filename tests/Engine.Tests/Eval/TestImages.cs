using System.Buffers.Binary;
using System.IO.Compression;

namespace TaskMerge.Engine.Tests.Eval;

/// <summary>Writes tiny 8-bit PNGs (RGB or grey) for dataset tests.</summary>
internal static class TestImages
{
    public static void WritePng(string path, int width, int height, byte[] pixels, bool grey = false)
    {
        int channels = grey ? 1 : 3;
        if (pixels.Length != width * height * channels) throw new ArgumentException("pixel count");
        var raw = new byte[height * (1 + width * channels)];
        for (int y = 0; y < height; y++)
            Array.Copy(pixels, y * width * channels, raw, y * (1 + width * channels) + 1, width * channels);
        using var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Fastest, leaveOpen: true)) zs.Write(raw);
        using var f = File.Create(path);
        f.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = (byte)(grey ? 0 : 2);
        Chunk(f, "IHDR", ihdr);
        Chunk(f, "IDAT", z.ToArray());
        Chunk(f, "IEND", []);
    }

    public static byte[] RandomPixels(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        var buf = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(buf, data.Length);
        s.Write(buf);
        var t = System.Text.Encoding.ASCII.GetBytes(type);
        s.Write(t);
        s.Write(data);
        uint c = 0xFFFFFFFF;
        foreach (byte x in t.Concat(data))
        {
            c ^= x;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        BinaryPrimitives.WriteUInt32BigEndian(buf, c ^ 0xFFFFFFFF);
        s.Write(buf);
    }
}
