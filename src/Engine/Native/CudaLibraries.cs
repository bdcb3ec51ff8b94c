using System.Reflection;
using System.Runtime.InteropServices;

namespace TaskMerge.Engine.Native;

/// <summary>
/// Loads cuBLAS and cuSOLVER through <see cref="NativeLibraryProbe"/> and resolves the engine's
/// P/Invoke library names to them. This is the engine assembly's one DllImport resolver: another
/// native library the engine binds goes here as another name.
/// </summary>
public static class CudaLibraries
{
    /// <summary>Library name used by the cuBLAS imports.</summary>
    internal const string CublasImportName = "taskmerge-cublas";

    /// <summary>Library name used by the cuSOLVER imports.</summary>
    internal const string CusolverImportName = "taskmerge-cusolver";

    private sealed record Loaded(IntPtr Handle, string Detail);

    private static readonly Lazy<Loaded> CublasLibrary = new(() => Load(NativeLibraryProbe.ForCublas(Environment.GetEnvironmentVariable)));
    private static readonly Lazy<Loaded> CusolverLibrary = new(() => Load(NativeLibraryProbe.ForCusolver(Environment.GetEnvironmentVariable)));

    static CudaLibraries() => NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);

    /// <summary>True when cuBLAS loads; <paramref name="detail"/> is the path it loaded from, or why it did not.</summary>
    public static bool TryLoadCublas(out string detail) => Report(CublasLibrary.Value, out detail);

    /// <summary>True when cuSOLVER loads; <paramref name="detail"/> is the path it loaded from, or why it did not.</summary>
    public static bool TryLoadCusolver(out string detail) => Report(CusolverLibrary.Value, out detail);

    /// <summary>Makes sure the resolver is registered; the import classes call it from their static constructors.</summary>
    internal static void EnsureResolver() { }

    private static bool Report(Loaded loaded, out string detail)
    {
        detail = loaded.Detail;
        return loaded.Handle != IntPtr.Zero;
    }

    private static Loaded Load(NativeLibraryProbe probe) =>
        probe.TryLoad(out IntPtr handle, out string from, out string error) ? new(handle, from) : new(IntPtr.Zero, error);

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) => name switch
    {
        CublasImportName => CublasLibrary.Value.Handle,
        CusolverImportName => CusolverLibrary.Value.Handle,
        _ => IntPtr.Zero,
    };
}
