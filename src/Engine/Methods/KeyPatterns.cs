using System.Text.RegularExpressions;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// The regexes of key-list parameters (<c>exclude_keys</c>), compiled and matched with a match timeout,
/// so a pattern with catastrophic backtracking is bad input naming it instead of a hang.
/// </summary>
public static class KeyPatterns
{
    /// <summary>Longest one match of one pattern against one tensor name may take (a real pattern takes microseconds).</summary>
    public static TimeSpan MatchTimeout { get; } = TimeSpan.FromMilliseconds(250);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Regex> Compiled = new(StringComparer.Ordinal);

    /// <summary>Compiles <paramref name="pattern"/> (once per pattern); an invalid one is bad input naming <paramref name="parameter"/>.</summary>
    public static Regex Compile(string pattern, string parameter = "exclude_keys")
    {
        try
        {
            return Compiled.GetOrAdd(pattern, p => new Regex(p, RegexOptions.CultureInvariant, MatchTimeout));
        }
        catch (ArgumentException e)
        {
            throw new BadInputException($"parameter '{parameter}': '{pattern}' is not a valid regular expression ({OneLine(e.Message)})");
        }
    }

    /// <summary>True when <paramref name="regex"/> matches somewhere in <paramref name="name"/>; a timeout is bad input naming the pattern.</summary>
    public static bool IsMatch(Regex regex, string name, string parameter = "exclude_keys")
    {
        try
        {
            return regex.IsMatch(name);
        }
        catch (RegexMatchTimeoutException)
        {
            throw new BadInputException(
                $"parameter '{parameter}': matching '{regex}' against tensor name '{name}' took longer than {MatchTimeout.TotalMilliseconds:0} ms (catastrophic backtracking?); simplify the pattern");
        }
    }

    /// <summary>True when any of <paramref name="regexes"/> matches <paramref name="name"/>.</summary>
    public static bool AnyMatch(IEnumerable<Regex> regexes, string name, string parameter = "exclude_keys")
    {
        foreach (var r in regexes)
            if (IsMatch(r, name, parameter)) return true;
        return false;
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
