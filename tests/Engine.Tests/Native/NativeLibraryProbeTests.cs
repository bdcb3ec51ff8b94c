using TaskMerge.Engine.Native;
using Xunit;

namespace TaskMerge.Engine.Tests.Native;

public sealed class NativeLibraryProbeTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void DirectoriesComeFromCudaHomeCudaPathLdLibraryPathThenTheDefault()
    {
        var dirs = NativeLibraryProbe.SearchDirectories(Env(
            ("CUDA_HOME", "/opt/cuda-12.4"), ("CUDA_PATH", "/opt/cuda-12.4/"), ("LD_LIBRARY_PATH", "/a/lib::/b/lib/:/opt/cuda-12.4/lib64")));
        Assert.Equal(["/opt/cuda-12.4/lib64", "/a/lib", "/b/lib", "/usr/local/cuda/lib64"], dirs);
    }

    [Fact]
    public void WithoutEnvironmentOnlyTheDefaultDirectoryAndBareNamesAreTried()
    {
        var probe = NativeLibraryProbe.ForCublas(Env());
        Assert.Equal(
        [
            "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.12",
            "/usr/local/cuda/lib64/libcublas.so.11", "/usr/local/cuda/lib64/libcublas.so",
            "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so",
        ], probe.Candidates);
    }

    [Fact]
    public void EveryDirectoryIsTriedWithEveryVersionBeforeTheSystemLoader()
    {
        var probe = NativeLibraryProbe.ForCusolver(Env(("CUDA_HOME", "/cuda"), ("LD_LIBRARY_PATH", "/x")));
        Assert.Equal(
        [
            "/cuda/lib64/libcusolver.so.13", "/cuda/lib64/libcusolver.so.12", "/cuda/lib64/libcusolver.so.11", "/cuda/lib64/libcusolver.so",
            "/x/libcusolver.so.13", "/x/libcusolver.so.12", "/x/libcusolver.so.11", "/x/libcusolver.so",
            "/usr/local/cuda/lib64/libcusolver.so.13", "/usr/local/cuda/lib64/libcusolver.so.12",
            "/usr/local/cuda/lib64/libcusolver.so.11", "/usr/local/cuda/lib64/libcusolver.so",
            "libcusolver.so.13", "libcusolver.so.12", "libcusolver.so.11", "libcusolver.so",
        ], probe.Candidates);
    }

    [Fact]
    public void TheFirstCandidateThatLoadsWins()
    {
        var probe = NativeLibraryProbe.ForCublas(Env(("CUDA_HOME", "/cuda")));
        var tried = new List<string>();
        bool found = probe.TryLoad((string path, out IntPtr handle) =>
        {
            tried.Add(path);
            handle = path == "/usr/local/cuda/lib64/libcublas.so.12" ? 42 : IntPtr.Zero;
            return handle != IntPtr.Zero;
        }, out IntPtr h, out string from, out string error);
        Assert.True(found);
        Assert.Equal(42, h);
        Assert.Equal("/usr/local/cuda/lib64/libcublas.so.12", from);
        Assert.Equal("", error);
        Assert.Equal(6, tried.Count);
    }

    [Fact]
    public void NotFoundListsEveryCandidateTried()
    {
        var probe = NativeLibraryProbe.ForCusolver(Env(("CUDA_PATH", "/cuda")));
        bool found = probe.TryLoad((string _, out IntPtr handle) => { handle = IntPtr.Zero; return false; }, out _, out _, out string error);
        Assert.False(found);
        Assert.Equal("cuSOLVER not found, tried: " + string.Join(", ", probe.Candidates), error);
        Assert.Contains("/cuda/lib64/libcusolver.so.11", error);
    }

    [Fact]
    public void TheRealLoaderTakesTheLibrariesFromTheDirectoryTheEnvironmentNames()
    {
        var dir = Environment.GetEnvironmentVariable("TASKMERGE_CUDA_LIBS");
        if (string.IsNullOrEmpty(dir) || !File.Exists(Path.Combine(dir, "libcublas.so.11")))
        {
            Assert.False(Environment.GetEnvironmentVariable("TASKMERGE_REQUIRE_CUDA_LIBS") == "1", $"TASKMERGE_REQUIRE_CUDA_LIBS=1 but no libcublas.so.11 in '{dir}'");
            Assert.Skip("CUDA libraries not available: set TASKMERGE_CUDA_LIBS (bash .ci/run provisions Debian's)");
        }
        System.Runtime.InteropServices.NativeLibrary.Load(Path.Combine(dir, "libcublasLt.so.11"));
        foreach (var probe in new[] { NativeLibraryProbe.ForCublas(Env(("LD_LIBRARY_PATH", dir))), NativeLibraryProbe.ForCusolver(Env(("LD_LIBRARY_PATH", dir))) })
        {
            Assert.True(probe.TryLoad(out IntPtr handle, out string from, out string error), error);
            Assert.NotEqual(IntPtr.Zero, handle);
            Assert.Equal(Path.Combine(dir, probe.Library == "cuBLAS" ? "libcublas.so.11" : "libcusolver.so.11"), from);
        }
    }

    [Fact]
    public void TheRealLoaderReportsEveryCandidateWhenNoneLoads()
    {
        string empty = TestPaths.NewTempDir();
        var probe = new NativeLibraryProbe("nothing", ["libtaskmerge-absent.so.1"], [empty]);
        Assert.False(probe.TryLoad(out IntPtr handle, out string from, out string error));
        Assert.Equal(IntPtr.Zero, handle);
        Assert.Equal("", from);
        Assert.StartsWith($"nothing not found, tried: {Path.Combine(empty, "libtaskmerge-absent.so.1")}, libtaskmerge-absent.so.1", error);
    }
}
