using TaskMerge.Engine.Tests.Cli;

namespace TaskMerge.Engine.Tests.InputBounds;

/// <summary>The bad-input contract of one CLI run: exit 2, exactly one line on stderr naming the problem, nothing in OUT_DIR.</summary>
internal static class BadInputAssert
{
    public static string Zoo => Path.Combine(TestPaths.Examples, "zoo");

    /// <summary>Writes <paramref name="yaml"/> (ZOO replaced by the bundled zoo) as config.yml in <paramref name="dir"/>.</summary>
    public static string Config(string dir, string yaml, string name = "config.yml")
    {
        string p = Path.Combine(dir, name);
        File.WriteAllText(p, yaml.Replace("ZOO", Zoo));
        return p;
    }

    /// <summary>Runs <c>merge CONFIG OUT --device cpu</c> in-process and asserts the bad-input contract; returns the error line.</summary>
    public static string Merge(string config, string outDir, params string[] mustMention) =>
        Run(["merge", config, outDir, "--device", "cpu", "--quiet"], outDir, mustMention);

    public static string Run(string[] args, string outDir, params string[] mustMention)
    {
        var (code, _, stderr) = CliRunner.Run(args);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("warning:")).ToArray();
        Assert.True(code == 2, $"exit {code}, stderr: {stderr}");
        Assert.True(lines.Length == 1, "stderr: " + stderr);
        Assert.StartsWith("error: ", lines[0]);
        foreach (var m in mustMention) Assert.Contains(m, lines[0]);
        Assert.True(!Directory.Exists(outDir) || Directory.GetFileSystemEntries(outDir).Length == 0,
            "left in OUT_DIR: " + (Directory.Exists(outDir) ? string.Join(", ", Directory.GetFileSystemEntries(outDir)) : ""));
        return lines[0];
    }
}
