using System.Globalization;

namespace TaskMerge.Engine.Config;

/// <summary>Parses parameter text the way YAML/mergekit users write numbers and booleans.</summary>
public static class ParameterParsing
{
    /// <summary>Parses a number ("0.5", "1e-5", ".5", "-3").</summary>
    public static bool TryParseDouble(string s, out double value) =>
        double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    /// <summary>Parses a YAML 1.1/1.2 boolean (true/false/yes/no/on/off).</summary>
    public static bool TryParseBool(string s, out bool value)
    {
        switch (s.Trim().ToLowerInvariant())
        {
            case "true" or "yes" or "on" or "y": value = true; return true;
            case "false" or "no" or "off" or "n": value = false; return true;
            default: value = false; return false;
        }
    }
}
