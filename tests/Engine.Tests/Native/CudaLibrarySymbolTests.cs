using System.Reflection;
using System.Runtime.InteropServices;
using TaskMerge.Engine.Native;

namespace TaskMerge.Engine.Tests.Native;

/// <summary>
/// Every entry point the cuBLAS and cuSOLVER bindings declare is exported by the real libraries: Debian's
/// <c>libcublas11</c>/<c>libcublaslt11</c>/<c>libcusolver11</c> (CUDA 11.8), which <c>.ci/run</c> unpacks into
/// <c>TASKMERGE_CUDA_LIBS</c>. Loading a library and resolving a symbol needs no GPU or driver, so this
/// catches a misspelt or missing export that the prototype check in <see cref="CudaBindingTests"/> cannot.
/// <c>TASKMERGE_REQUIRE_CUDA_LIBS=1</c> (set there) makes their absence a failure; elsewhere the test skips.
/// </summary>
public sealed class CudaLibrarySymbolTests
{
    private static IEnumerable<string> EntryPoints(Type bindings) =>
        bindings.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .Select(m => (Method: m, Import: m.GetCustomAttribute<LibraryImportAttribute>()))
            .Where(x => x.Import is not null)
            .Select(x => x.Import!.EntryPoint ?? x.Method.Name);

    [Fact]
    public void Bindings_declare_entry_points()
    {
        Assert.Contains("cublasSgemm_v2", EntryPoints(typeof(Cublas)));
        Assert.Contains("cusolverDnDgesvdj", EntryPoints(typeof(Cusolver)));
    }

    [Fact]
    public void Every_declared_entry_point_is_exported_by_the_real_libraries()
    {
        var dir = Environment.GetEnvironmentVariable("TASKMERGE_CUDA_LIBS");
        if (string.IsNullOrEmpty(dir) || !File.Exists(Path.Combine(dir, "libcublas.so.11")))
        {
            Assert.False(Environment.GetEnvironmentVariable("TASKMERGE_REQUIRE_CUDA_LIBS") == "1", $"TASKMERGE_REQUIRE_CUDA_LIBS=1 but no libcublas.so.11 in '{dir}'");
            Assert.Skip("CUDA libraries not available: set TASKMERGE_CUDA_LIBS (bash .ci/run provisions Debian's)");
        }
        // Dependencies first, so each library's DT_NEEDED entries are already loaded by soname.
        NativeLibrary.Load(Path.Combine(dir, "libcublasLt.so.11"));
        var cublas = NativeLibrary.Load(Path.Combine(dir, "libcublas.so.11"));
        var cusolver = NativeLibrary.Load(Path.Combine(dir, "libcusolver.so.11"));
        var missing = EntryPoints(typeof(Cublas)).Where(e => !NativeLibrary.TryGetExport(cublas, e, out _)).Select(e => "libcublas.so.11: " + e)
            .Concat(EntryPoints(typeof(Cusolver)).Where(e => !NativeLibrary.TryGetExport(cusolver, e, out _)).Select(e => "libcusolver.so.11: " + e))
            .ToList();
        Assert.True(missing.Count == 0, "missing exports: " + string.Join(", ", missing));
        Assert.False(NativeLibrary.TryGetExport(cublas, "cublasSgemm_v2_misspelt", out _));
    }
}
