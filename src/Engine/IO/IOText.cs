using System.Text;

namespace TaskMerge.Engine.IO;

/// <summary>Helpers that keep user-facing messages on one line.</summary>
internal static class IOText
{
    /// <summary>Quotes a name for a message, escaping control characters so it stays on one line.</summary>
    public static string Q(string s)
    {
        var sb = new StringBuilder(s.Length + 2);
        sb.Append('\'');
        foreach (char c in s)
        {
            if (c == '\\') sb.Append("\\\\");
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (char.IsControl(c) || c == '\u2028' || c == '\u2029') sb.Append($"\\u{(int)c:x4}");
            else sb.Append(c);
        }
        if (sb.Length > 202) { sb.Length = 200; sb.Append("..."); }
        return sb.Append('\'').ToString();
    }

    /// <summary>Collapses any line breaks in <paramref name="s"/> into spaces.</summary>
    public static string OneLine(string s)
    {
        if (s.IndexOfAny(['\n', '\r', '\u2028', '\u2029']) < 0) return s;
        var sb = new StringBuilder(s.Length);
        bool space = false;
        foreach (char c in s)
        {
            if (c is '\n' or '\r' or '\u2028' or '\u2029')
            {
                if (!space) sb.Append(' ');
                space = true;
            }
            else
            {
                sb.Append(c);
                space = c == ' ';
            }
        }
        return sb.ToString().Trim();
    }

    /// <summary>A path for a message (line breaks in odd file names escaped).</summary>
    public static string P(string path) => OneLine(path);

    /// <summary>
    /// The bytes of <paramref name="path"/>; an unreadable file is a <see cref="BadInputException"/>
    /// "<paramref name="shown"/>: cannot read[ <paramref name="what"/>]: reason" on one line.
    /// </summary>
    public static byte[] ReadAllBytes(string path, string shown, string? what = null) => Read(path, shown, what, ReadRegular);

    /// <summary>The text of <paramref name="path"/>, with unreadable files reported as by <see cref="ReadAllBytes"/>.</summary>
    public static string ReadAllText(string path, string shown, string? what = null) =>
        Read(path, shown, what, p => new StreamReader(new MemoryStream(ReadRegular(p)), detectEncodingFromByteOrderMarks: true).ReadToEnd());

    /// <summary>Input files are read only when they are regular files (<see cref="RegularFile"/>).</summary>
    private static byte[] ReadRegular(string path)
    {
        using var fs = RegularFile.OpenRead(path, P(path));
        var bytes = new byte[fs.Length];
        fs.ReadExactly(bytes);
        return bytes;
    }

    private static T Read<T>(string path, string shown, string? what, Func<string, T> read)
    {
        try
        {
            return read(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"{shown}: cannot read{(what is null ? "" : " " + what)}: {OneLine(e.Message)}", e);
        }
    }

    /// <summary>Formats a byte count in human units (decimal, like the size parser).</summary>
    public static string Bytes(long n) => n switch
    {
        >= 1_000_000_000 => $"{n / 1e9:0.##} GB",
        >= 1_000_000 => $"{n / 1e6:0.##} MB",
        >= 1_000 => $"{n / 1e3:0.##} KB",
        _ => $"{n} B",
    };
}
