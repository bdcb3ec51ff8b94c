using System.Runtime.InteropServices;

namespace TaskMerge.Engine.Native;

/// <summary>
/// Finds a shared library among versioned file names and directories: every directory (from
/// CUDA_HOME, CUDA_PATH, LD_LIBRARY_PATH, /usr/local/cuda, then the <c>nvidia/*/lib</c> folders of pip's
/// CUDA wheels under each Python site-packages) combined with every file name in order, then the bare
/// file names for the system loader. The candidate list is a pure function of the environment and of
/// the folders that exist, so it can be checked without the library. A failed load keeps the loader's
/// own message (dlerror), so "found but a dependency is missing" is told apart from "not there".
/// </summary>
public sealed class NativeLibraryProbe
{
    /// <summary>cuBLAS file names, newest first.</summary>
    public static readonly IReadOnlyList<string> CublasFileNames =
        ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"];

    /// <summary>cuSOLVER file names, newest first (CUDA 13 ships .so.12, CUDA 12 ships .so.11).</summary>
    public static readonly IReadOnlyList<string> CusolverFileNames =
        ["libcusolver.so.13", "libcusolver.so.12", "libcusolver.so.11", "libcusolver.so"];

    /// <summary>The pip wheel folders (under site-packages/nvidia/) that hold the libraries and their dependencies.</summary>
    private static readonly string[] WheelPackages = ["cublas", "cusolver", "cusparse", "nvjitlink"];

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

    private NativeLibraryProbe(string library, IReadOnlyList<string> candidates)
    {
        Library = library;
        Candidates = candidates;
    }

    /// <summary>The library's display name.</summary>
    public string Library { get; }

    /// <summary>Paths and bare names tried, in order.</summary>
    public IReadOnlyList<string> Candidates { get; }

    /// <summary>A cuBLAS probe for the given environment.</summary>
    public static NativeLibraryProbe ForCublas(Func<string, string?> getEnvironmentVariable, Func<string, IEnumerable<string>>? listDirectories = null) =>
        new("cuBLAS", CublasFileNames, SearchDirectories(getEnvironmentVariable, listDirectories));

    /// <summary>A cuSOLVER probe for the given environment.</summary>
    public static NativeLibraryProbe ForCusolver(Func<string, string?> getEnvironmentVariable, Func<string, IEnumerable<string>>? listDirectories = null) =>
        new("cuSOLVER", CusolverFileNames, SearchDirectories(getEnvironmentVariable, listDirectories));

    /// <summary>
    /// $CUDA_HOME/lib64, $CUDA_PATH/lib64, each LD_LIBRARY_PATH entry, /usr/local/cuda/lib64, then
    /// <c>SITE/nvidia/{cublas,cusolver,…}/lib</c> for every site-packages folder SITE (from VIRTUAL_ENV,
    /// CONDA_PREFIX, PYTHONPATH, ~/.local and the system Python folders) that
    /// <paramref name="listDirectories"/> (a glob of existing folders; <see cref="ExistingDirectories"/>
    /// by default) finds; unset or empty variables are skipped and duplicates dropped.
    /// </summary>
    public static IReadOnlyList<string> SearchDirectories(Func<string, string?> getEnvironmentVariable, Func<string, IEnumerable<string>>? listDirectories = null)
    {
        listDirectories ??= ExistingDirectories;
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
        foreach (string site in SitePackagePatterns(getEnvironmentVariable))
            foreach (string found in listDirectories(site))
                foreach (string package in WheelPackages)
                    Add(Path.Combine(found, "nvidia", package, "lib"));
        return dirs;
    }

    /// <summary>Folder patterns (a <c>*</c> matches one path segment) where Python keeps site-packages.</summary>
    private static IEnumerable<string> SitePackagePatterns(Func<string, string?> env)
    {
        foreach (string? prefix in new[] { env("VIRTUAL_ENV"), env("CONDA_PREFIX") })
            if (!string.IsNullOrWhiteSpace(prefix)) yield return Path.Combine(prefix.Trim(), "lib", "python3*", "site-packages");
        foreach (string dir in (env("PYTHONPATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) yield return dir;
        if (!string.IsNullOrWhiteSpace(env("HOME"))) yield return Path.Combine(env("HOME")!.Trim(), ".local", "lib", "python3*", "site-packages");
        yield return "/usr/local/lib/python3*/dist-packages";
        yield return "/usr/local/lib/python3*/site-packages";
        yield return "/usr/lib/python3/dist-packages";
    }

    /// <summary>The existing folders matching <paramref name="pattern"/>, whose last-but-one segment may hold a <c>*</c>.</summary>
    public static IEnumerable<string> ExistingDirectories(string pattern)
    {
        string? parent = Path.GetDirectoryName(pattern);
        string leaf = Path.GetFileName(pattern);
        if (parent is null) return [];
        if (!parent.Contains('*')) return Directory.Exists(pattern) ? [pattern] : [];
        string? grand = Path.GetDirectoryName(parent);
        if (grand is null || !Directory.Exists(grand)) return [];
        return Directory.EnumerateDirectories(grand, Path.GetFileName(parent)).Order(StringComparer.Ordinal)
            .Select(d => Path.Combine(d, leaf)).Where(Directory.Exists);
    }

    /// <summary>
    /// The CUDA installation a library path belongs to: for a pip wheel (<c>…/nvidia/PKG/lib/FILE</c>) the
    /// <c>…/nvidia</c> folder that holds every wheel, else the library's folder; "" for a bare name
    /// (the system loader's choice).
    /// </summary>
    public static string InstallationOf(string path)
    {
        string? dir = Path.GetDirectoryName(path);
        if (string.IsNullOrEmpty(dir)) return "";
        string? package = Path.GetDirectoryName(dir);
        string? nvidia = package is null ? null : Path.GetDirectoryName(package);
        return Path.GetFileName(dir) == "lib" && nvidia is not null && Path.GetFileName(nvidia) == "nvidia" ? nvidia : dir;
    }

    /// <summary>This probe with the candidates of <paramref name="installation"/> (see <see cref="InstallationOf"/>) tried first, the rest after in their order.</summary>
    public NativeLibraryProbe PreferInstallation(string installation) =>
        new(Library, [.. Candidates.Where(c => InstallationOf(c) == installation), .. Candidates.Where(c => InstallationOf(c) != installation)]);

    /// <summary>Loads the first candidate that loads; on failure <paramref name="error"/> says why (see <see cref="TryLoad(Loader, Func{string, bool}, out IntPtr, out string, out string)"/>).</summary>
    public bool TryLoad(out IntPtr handle, out string loadedFrom, out string error) =>
        TryLoad(LoadWithWheelDependencies, File.Exists, out handle, out loadedFrom, out error);

    /// <summary>A loader: true and a handle when <paramref name="path"/> loads, else false and the loader's message.</summary>
    public delegate bool Loader(string path, out IntPtr handle, out string error);

    /// <summary>
    /// As <see cref="TryLoad(out IntPtr, out string, out string)"/> with a given loader and file test (tests pass fakes).
    /// When nothing loads: if some candidate file exists, the error gives each such path with the loader's
    /// message (a missing dependency, a wrong ELF class); if none exists, it lists every candidate tried.
    /// </summary>
    public bool TryLoad(Loader load, Func<string, bool> fileExists, out IntPtr handle, out string loadedFrom, out string error)
    {
        var failures = new List<string>();
        foreach (string candidate in Candidates)
        {
            if (load(candidate, out handle, out string why))
            {
                loadedFrom = candidate;
                error = "";
                return true;
            }
            if (Path.IsPathRooted(candidate) && fileExists(candidate)) failures.Add($"{candidate}: {why}");
        }
        handle = IntPtr.Zero;
        loadedFrom = "";
        error = failures.Count > 0
            ? $"{Library} found but not loadable: {string.Join("; ", failures)}"
            : $"{Library} not found, tried: {string.Join(", ", Candidates)}";
        return false;
    }

    /// <summary>
    /// <see cref="NativeLibrary.Load(string)"/>, keeping the loader's message on failure. A library of a pip
    /// wheel is preceded by its sibling wheels' dependencies (cuBLASLt, cuSPARSE, nvJitLink), since the
    /// wheels find each other only by soname once loaded.
    /// </summary>
    private static bool LoadWithWheelDependencies(string path, out IntPtr handle, out string error)
    {
        string installation = InstallationOf(path);
        if (Path.GetFileName(installation) == "nvidia" && File.Exists(path))
            foreach (string dependency in new[] { "cublas/lib/libcublasLt.so.*", "nvjitlink/lib/libnvJitLink.so.*", "cusparse/lib/libcusparse.so.*" })
            {
                string dir = Path.Combine(installation, Path.GetDirectoryName(dependency)!);
                if (!Directory.Exists(dir)) continue;
                foreach (string lib in Directory.EnumerateFiles(dir, Path.GetFileName(dependency)).Order(StringComparer.Ordinal))
                    NativeLibrary.TryLoad(lib, out _);
            }
        try
        {
            handle = NativeLibrary.Load(path);
            error = "";
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            handle = IntPtr.Zero;
            error = LoaderMessage(e.Message, path);
            return false;
        }
    }

    /// <summary>The dlerror line of .NET's load failure message for <paramref name="path"/> (the message itself if none is found).</summary>
    internal static string LoaderMessage(string message, string path)
    {
        foreach (string line in message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (line.StartsWith(path + ":", StringComparison.Ordinal)) return line[(path.Length + 1)..].Trim();
        int colon = message.LastIndexOf(": ", StringComparison.Ordinal);
        return colon >= 0 ? message[(colon + 2)..].Trim() : message.Trim();
    }
}
