using System.Globalization;

namespace TaskMerge.Engine.IO;

/// <summary>Parses human byte sizes as mergekit does (<c>--out-shard-size 5B</c>).</summary>
public static class SizeParser
{
    /// <summary>
    /// Parses a positive byte count: a plain integer is bytes; suffixes (case-insensitive) are
    /// decimal, as in mergekit: <c>K</c> = 1e3, <c>M</c> = 1e6, <c>B</c> or <c>G</c> = 1e9,
    /// <c>T</c> = 1e12; <c>KB</c>/<c>MB</c>/<c>GB</c>/<c>TB</c> mean the same, and
    /// <c>KiB</c>/<c>MiB</c>/<c>GiB</c>/<c>TiB</c> are binary. A decimal mantissa (<c>1.5B</c>)
    /// is allowed when the result is a whole number of bytes. Anything else raises
    /// <see cref="BadInputException"/>.
    /// </summary>
    /// <param name="text">The size, e.g. <c>5B</c>, <c>500M</c>, <c>1000000</c>.</param>
    /// <returns>The size in bytes.</returns>
    public static long ParseBytes(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Trim().Replace("_", "");
        if (s.Length == 0) throw Bad(text, "empty");

        int split = s.Length;
        while (split > 0 && char.IsAsciiLetter(s[split - 1])) split--;
        string number = s[..split].TrimEnd(), suffix = s[split..].ToUpperInvariant();
        decimal mult = suffix switch
        {
            "" => 1m,
            "K" or "KB" => 1e3m,
            "M" or "MB" => 1e6m,
            "B" or "G" or "GB" => 1e9m,
            "T" or "TB" => 1e12m,
            "KIB" => 1024m,
            "MIB" => 1024m * 1024,
            "GIB" => 1024m * 1024 * 1024,
            "TIB" => 1024m * 1024 * 1024 * 1024,
            _ => throw Bad(text, $"unknown suffix '{s[split..]}' (use K, M, B/G or T)"),
        };
        if (number.Length == 0 || !decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal value))
            throw Bad(text, "expected a number with an optional K, M, B/G or T suffix");
        decimal bytes;
        try { bytes = value * mult; }
        catch (OverflowException) { throw Bad(text, "too large"); }
        if (bytes != decimal.Truncate(bytes)) throw Bad(text, "not a whole number of bytes");
        if (bytes <= 0) throw Bad(text, "must be positive");
        if (bytes > long.MaxValue) throw Bad(text, "too large");
        return (long)bytes;
    }

    private static BadInputException Bad(string text, string why) =>
        new($"invalid size '{IOText.OneLine(text)}': {why}");
}
