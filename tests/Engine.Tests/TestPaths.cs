namespace TaskMerge.Engine.Tests;

/// <summary>Locations of repository files and scratch directories for tests.</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRoot();

    public static string Examples => Path.Combine(RepoRoot, "examples");

    public static string Data => Path.Combine(AppContext.BaseDirectory, "data");

    /// <summary>A fresh empty directory under the system temp folder.</summary>
    public static string NewTempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "taskmerge-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>The checkout (where Engine.sln is) or, in the GPU bundle, the folder the bundle ships examples/ in.</summary>
    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln")) || Directory.Exists(Path.Combine(d.FullName, "examples", "zoo"))) return d.FullName;
        throw new InvalidOperationException("neither Engine.sln nor examples/zoo found above " + AppContext.BaseDirectory);
    }
}
