using System.Buffers.Binary;
using System.IO.Compression;

namespace TaskMerge.Cli;

/// <summary>Writes a matrix in [-1, 1] as an RGB PNG heatmap (blue → white → red), one square of cells per value.</summary>
internal static class HeatmapPng
{
    private const int Cell = 32;

    public static void Write(string path, double[,] values)
    {
        int n = values.GetLength(0), m = values.GetLength(1);
        int width = m * Cell, height = n * Cell;
        var raw = new byte[height * (1 + width * 3)];
        for (int y = 0; y < height; y++)
        {
            int row = y * (1 + width * 3);
            raw[row] = 0;
            for (int x = 0; x < width; x++)
            {
                var (r, g, b) = Color(values[y / Cell, x / Cell]);
                int p = row + 1 + x * 3;
                (raw[p], raw[p + 1], raw[p + 2]) = (r, g, b);
            }
        }
        using var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) z.Write(raw);

        string tmp = path + $".tmp-{Environment.ProcessId}";
        using (var f = File.Create(tmp))
        {
            f.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
            var ihdr = new byte[13];
            BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
            BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
            ihdr[8] = 8; ihdr[9] = 2;
            Chunk(f, "IHDR", ihdr);
            Chunk(f, "IDAT", compressed.ToArray());
            Chunk(f, "IEND", []);
        }
        File.Move(tmp, path, overwrite: true);
    }

    private static (byte, byte, byte) Color(double v)
    {
        v = double.IsFinite(v) ? Math.Clamp(v, -1, 1) : 0;
        byte fade = (byte)Math.Round(255 * (1 - Math.Abs(v)));
        return v >= 0 ? ((byte)255, fade, fade) : (fade, fade, (byte)255);
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        s.Write(typeBytes);
        s.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(len, Crc(typeBytes, data));
        s.Write(len);
    }

    private static uint Crc(byte[] type, byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in type.Concat(data))
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return c ^ 0xFFFFFFFF;
    }
}
