namespace TaskMerge.Engine.IO;

/// <summary>
/// Finds <c>\uD800</c>–<c>\uDFFF</c> escapes in JSON strings that do not form a high-low surrogate
/// pair. System.Text.Json accepts them while parsing but throws when such a string is read, so input
/// JSON (safetensors headers, indexes, config.json) is checked once up front and refused as bad input.
/// </summary>
public static class JsonSurrogates
{
    /// <summary>Throws a <see cref="BadInputException"/> "<paramref name="shown"/>: ..." when <paramref name="json"/> has an unpaired surrogate escape.</summary>
    /// <param name="json">UTF-8 JSON text.</param>
    /// <param name="shown">Start of the message (the file).</param>
    /// <param name="offset">Added to the reported byte position (e.g. 8 for a safetensors header).</param>
    public static void Check(ReadOnlySpan<byte> json, string shown, long offset = 0)
    {
        int at = FindUnpaired(json);
        if (at >= 0)
            throw new BadInputException($"{shown}: JSON string has an unpaired UTF-16 surrogate escape '{System.Text.Encoding.ASCII.GetString(json.Slice(at, 6))}' at byte {offset + at}");
    }

    /// <summary>As <see cref="Check(ReadOnlySpan{byte}, string, long)"/> for JSON text already decoded; returns <paramref name="json"/>.</summary>
    public static string Check(string json, string shown)
    {
        Check(System.Text.Encoding.UTF8.GetBytes(json), shown);
        return json;
    }

    /// <summary>Byte index of the first unpaired surrogate escape, or −1.</summary>
    public static int FindUnpaired(ReadOnlySpan<byte> json)
    {
        bool inString = false;
        for (int i = 0; i < json.Length; i++)
        {
            byte b = json[i];
            if (!inString) { inString = b == '"'; continue; }
            if (b == '"') { inString = false; continue; }
            if (b != '\\') continue;
            if (i + 1 >= json.Length) return -1;
            if (json[i + 1] != 'u') { i++; continue; }
            if (!TryHex(json, i + 2, out int unit)) { i++; continue; }
            if (unit is >= 0xD800 and <= 0xDBFF)
            {
                if (i + 11 < json.Length && json[i + 6] == '\\' && json[i + 7] == 'u' && TryHex(json, i + 8, out int low) && low is >= 0xDC00 and <= 0xDFFF)
                {
                    i += 11;
                    continue;
                }
                return i;
            }
            if (unit is >= 0xDC00 and <= 0xDFFF) return i;
            i += 5;
        }
        return -1;
    }

    private static bool TryHex(ReadOnlySpan<byte> s, int start, out int value)
    {
        value = 0;
        if (start + 4 > s.Length) return false;
        for (int k = 0; k < 4; k++)
        {
            int d = s[start + k] switch
            {
                >= (byte)'0' and <= (byte)'9' => s[start + k] - '0',
                >= (byte)'a' and <= (byte)'f' => s[start + k] - 'a' + 10,
                >= (byte)'A' and <= (byte)'F' => s[start + k] - 'A' + 10,
                _ => -1,
            };
            if (d < 0) return false;
            value = value * 16 + d;
        }
        return true;
    }
}
