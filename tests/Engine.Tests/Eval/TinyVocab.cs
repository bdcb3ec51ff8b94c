using System.Text.Json;

namespace TaskMerge.Engine.Tests.Eval;

/// <summary>A handmade byte-level BPE vocabulary: 4 specials, the 256 byte symbols, a few merges, then &lt;mask&gt;.</summary>
internal static class TinyVocab
{
    public static readonly string[] Merges = ["h e", "l l", "Ġ w", "o r", "he ll", "Ġw or", "hell o", "Ġ t", "Ġt he"];

    public static char ByteChar(int b)
    {
        int n = 0;
        for (int i = 0; i < 256; i++)
        {
            bool printable = i is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255;
            if (i == b) return printable ? (char)i : (char)(256 + n);
            if (!printable) n++;
        }
        throw new ArgumentOutOfRangeException(nameof(b));
    }

    public static Dictionary<string, int> Vocab()
    {
        var v = new Dictionary<string, int> { ["<s>"] = 0, ["<pad>"] = 1, ["</s>"] = 2, ["<unk>"] = 3 };
        for (int b = 0; b < 256; b++) v[ByteChar(b).ToString()] = v.Count;
        foreach (var m in Merges) v[m.Replace(" ", "")] = v.Count;
        v["<mask>"] = v.Count;
        return v;
    }

    public static int Size => 4 + 256 + Merges.Length + 1;

    public static string Write(string dir)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(Vocab()));
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n" + string.Join("\n", Merges) + "\n");
        return dir;
    }
}
