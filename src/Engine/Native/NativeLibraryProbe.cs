using System.Runtime.InteropServices;

namespace TaskMerge.Engine.Native;

/// <summary>
/// Finds a shared library among versioned file names and directories: every directory (from
/// CUDA_HOME, CUDA_PATH, LD_LIBRARY_PATH, then /usr/local/cuda) combined with every file name in
/// order, then the bare file names for the system loader. The candidate list is a pure function
/// of the environment, so it can be checked without the library.
/// </summary>
public sealed class NativeLibraryProbe
{
    /// <summary>cuBLAS file names, newest first.</summary>
    public static readonly IReadOnlyList<string> CublasFileNames =
        ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"];

    /// <summary>cuSOLVER file names, newest first (CUDA 13 ships .so.12, CUDA 12 ships .so.11).</summary>
    public static readonly IReadOnlyList<string> CusolverFileNames =
        ["libcusolver.so.13", "libcusolver.so.12", "libcusolver.so.11", "libcusolver.so"];

    private const string DefaultCudaLibDirectory = "/usr/local/cuda/lib64";

    /// <summary>A probe for <paramref name="library"/> (a display name such as "cuBLAS").</summary>
    public NativeLibraryProbe(string library, IReadOnlyList<string> fileNames, IReadOnlyList<string> directories)
    {
        Library = library;
        var candidates = new List<string>();
        foreach (string dir in directories)
            foreach (string file in fileNames)
                candidates.Add(Path.Combine(dir, file));
        candidates.AddRange(fileNames);
        Candidates = candidates;
    }

    /// <summary>The library's display name.</summary>
    public string Library { get; }

    /// <summary>Paths and bare names tried, in order.</summary>
    public IReadOnlyList<string> Candidates { get; }

    /// <summary>A cuBLAS probe for the given environment.</summary>
    public static NativeLibraryProbe ForCublas(Func<string, string?> getEnvironmentVariable) =>
        new("cuBLAS", CublasFileNames, SearchDirectories(getEnvironmentVariable));

    /// <summary>A cuSOLVER probe for the given environment.</summary>
    public static NativeLibraryProbe ForCusolver(Func<string, string?> getEnvironmentVariable) =>
        new("cuSOLVER", CusolverFileNames, SearchDirectories(getEnvironmentVariable));

    /// <summary>
    /// $CUDA_HOME/lib64, $CUDA_PATH/lib64, each LD_LIBRARY_PATH entry, then /usr/local/cuda/lib64;
    /// unset or empty variables are skipped and duplicates dropped.
    /// </summary>
    public static IReadOnlyList<string> SearchDirectories(Func<string, string?> getEnvironmentVariable)
    {
        var dirs = new List<string>();
        void Add(string? dir)
        {
            if (string.IsNullOrWhiteSpace(dir)) return;
            dir = dir.Trim().TrimEnd('/');
            if (dir.Length > 0 && !dirs.Contains(dir)) dirs.Add(dir);
        }
        foreach (string root in new[] { "CUDA_HOME", "CUDA_PATH" })
        {
            string? value = getEnvironmentVariable(root);
            if (!string.IsNullOrWhiteSpace(value)) Add(Path.Combine(value.Trim(), "lib64"));
        }
        foreach (string dir in (getEnvironmentVariable("LD_LIBRARY_PATH") ?? "").Split(':')) Add(dir);
        Add(DefaultCudaLibDirectory);
        return dirs;
    }

    /// <summary>Loads the first candidate that loads; on failure <paramref name="error"/> lists every candidate tried.</summary>
    public bool TryLoad(out IntPtr handle, out string loadedFrom, out string error) =>
        TryLoad(static (string path, out IntPtr h) => NativeLibrary.TryLoad(path, out h), out handle, out loadedFrom, out error);

    /// <summary>A loader: true and a handle when <paramref name="path"/> loads.</summary>
    public delegate bool Loader(string path, out IntPtr handle);

    /// <summary>As <see cref="TryLoad(out IntPtr, out string, out string)"/> with a given loader (tests pass a fake).</summary>
    public bool TryLoad(Loader load, out IntPtr handle, out string loadedFrom, out string error)
    {
        foreach (string candidate in Candidates)
        {
            if (load(candidate, out handle))
            {
                loadedFrom = candidate;
                error = "";
                return true;
            }
        }
        handle = IntPtr.Zero;
        loadedFrom = "";
        error = $"{Library} not found, tried: {string.Join(", ", Candidates)}";
        return false;
    }
}
