using System.Reflection;
using System.Runtime.InteropServices;

namespace TaskMerge.Engine.Native;

/// <summary>
/// Loads cuBLAS and cuSOLVER through <see cref="NativeLibraryProbe"/> and resolves the engine's
/// P/Invoke library names to them. cuBLAS is loaded first and cuSOLVER is then looked for in the
/// same CUDA installation before anywhere else, so the two come from one toolkit where one holds
/// both. This is the engine assembly's one DllImport resolver: another native library the engine
/// binds goes here as another name.
/// </summary>
public static class CudaLibraries
{
    /// <summary>Library name used by the cuBLAS imports.</summary>
    internal const string CublasImportName = "taskmerge-cublas";

    /// <summary>Library name used by the cuSOLVER imports.</summary>
    internal const string CusolverImportName = "taskmerge-cusolver";

    /// <summary>A library as loaded: the handle (zero when it did not load), the path or why not, and its version from the file name.</summary>
    private sealed record Loaded(IntPtr Handle, string Detail, string? Version);

    private static readonly Lazy<Loaded> CublasLibrary = new(() => Load(NativeLibraryProbe.ForCublas(Environment.GetEnvironmentVariable)));

    private static readonly Lazy<Loaded> CusolverLibrary = new(() =>
    {
        var probe = NativeLibraryProbe.ForCusolver(Environment.GetEnvironmentVariable);
        var cublas = CublasLibrary.Value;
        return Load(cublas.Handle != IntPtr.Zero ? probe.PreferInstallation(NativeLibraryProbe.InstallationOf(cublas.Detail)) : probe);
    });

    static CudaLibraries() => NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);

    /// <summary>True when cuBLAS loads; <paramref name="detail"/> is the path it loaded from, or why it did not.</summary>
    public static bool TryLoadCublas(out string detail) => Report(CublasLibrary.Value, out detail);

    /// <summary>
    /// True when cuSOLVER loads; <paramref name="detail"/> is the path it loaded from (with a note when it is
    /// not from cuBLAS's installation), or why it did not.
    /// </summary>
    public static bool TryLoadCusolver(out string detail)
    {
        bool ok = Report(CusolverLibrary.Value, out detail);
        if (ok && CublasLibrary.Value.Handle != IntPtr.Zero
            && NativeLibraryProbe.InstallationOf(detail) != NativeLibraryProbe.InstallationOf(CublasLibrary.Value.Detail))
            detail += $"; not from cuBLAS's installation ({CublasLibrary.Value.Detail})";
        return ok;
    }

    /// <summary>
    /// What was loaded, for reports: per library (cublas, cusolver) its path, version (from the real
    /// file name, e.g. 12.4.5.8) or why it is not loaded. Only libraries already asked for are listed,
    /// so describing loads nothing.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Describe()
    {
        var d = new Dictionary<string, string>();
        if (CublasLibrary.IsValueCreated) d["cublas"] = Describe(CublasLibrary.Value);
        if (CusolverLibrary.IsValueCreated) d["cusolver"] = Describe(CusolverLibrary.Value);
        return d;
    }

    private static string Describe(Loaded l) =>
        l.Handle == IntPtr.Zero ? l.Detail : l.Version is null ? l.Detail : $"{l.Detail} (version {l.Version})";

    /// <summary>Makes sure the resolver is registered; the import classes call it from their static constructors.</summary>
    internal static void EnsureResolver() { }

    private static bool Report(Loaded loaded, out string detail)
    {
        detail = loaded.Detail;
        return loaded.Handle != IntPtr.Zero;
    }

    private static Loaded Load(NativeLibraryProbe probe) =>
        probe.TryLoad(out IntPtr handle, out string from, out string error) ? new(handle, from, VersionOf(from)) : new(IntPtr.Zero, error, null);

    /// <summary>
    /// The version in the real file name behind <paramref name="loadedFrom"/> (libcublas.so.12 → libcublas.so.12.4.5.8
    /// → "12.4.5.8"); a bare name is looked up in this process's mappings. Null when it cannot be told.
    /// </summary>
    internal static string? VersionOf(string loadedFrom)
    {
        try
        {
            string? path = Path.IsPathRooted(loadedFrom) ? loadedFrom : MappedPath(loadedFrom);
            if (path is null) return null;
            string real = File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path;
            return VersionInFileName(Path.GetFileName(real));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>"12.4.5.8" from "libcublas.so.12.4.5.8"; null without a version suffix.</summary>
    internal static string? VersionInFileName(string fileName)
    {
        int so = fileName.IndexOf(".so.", StringComparison.Ordinal);
        return so < 0 ? null : fileName[(so + 4)..];
    }

    private static string? MappedPath(string soname)
    {
        if (!File.Exists("/proc/self/maps")) return null;
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            int slash = line.IndexOf('/');
            if (slash >= 0 && Path.GetFileName(line[slash..]).StartsWith(soname, StringComparison.Ordinal)) return line[slash..].Trim();
        }
        return null;
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) => name switch
    {
        CublasImportName => CublasLibrary.Value.Handle,
        CusolverImportName => CusolverLibrary.Value.Handle,
        _ => IntPtr.Zero,
    };
}
