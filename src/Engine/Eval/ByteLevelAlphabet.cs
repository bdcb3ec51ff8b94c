namespace TaskMerge.Engine.Eval;

/// <summary>
/// GPT-2's <c>bytes_to_unicode</c>, shared by byte-level BPE vocabularies (RoBERTa, CLIP): printable
/// bytes map to themselves, the other bytes to U+0100 + n in byte order.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The symbol of each byte value.</summary>
    public static char[] Symbols { get; } = Build();

    /// <summary>The symbols of the UTF-8 bytes of <paramref name="text"/>.</summary>
    public static string Encode(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = Symbols[bytes[i]];
        return new string(chars);
    }

    private static char[] Build()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255;
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }
}
