using TaskMerge.Engine.Native;
using Xunit;

namespace TaskMerge.Engine.Tests.Native;

public sealed class NativeLibraryProbeTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    private static IEnumerable<string> NoFolders(string pattern) => [];

    [Fact]
    public void PipWheelFoldersOfEverySitePackagesComeAfterTheCudaFolders()
    {
        var globbed = new List<string>();
        IEnumerable<string> Folders(string pattern)
        {
            globbed.Add(pattern);
            return pattern == "/venv/lib/python3*/site-packages" ? ["/venv/lib/python3.11/site-packages"] : [];
        }
        var dirs = NativeLibraryProbe.SearchDirectories(Env(("CUDA_PATH", "/cuda"), ("VIRTUAL_ENV", "/venv"), ("HOME", "/home/u")), Folders);
        Assert.Equal(
        [
            "/cuda/lib64", "/usr/local/cuda/lib64",
            "/venv/lib/python3.11/site-packages/nvidia/cublas/lib", "/venv/lib/python3.11/site-packages/nvidia/cusolver/lib",
            "/venv/lib/python3.11/site-packages/nvidia/cusparse/lib", "/venv/lib/python3.11/site-packages/nvidia/nvjitlink/lib",
        ], dirs);
        Assert.Contains("/home/u/.local/lib/python3*/site-packages", globbed);
        Assert.Contains("/usr/local/lib/python3*/dist-packages", globbed);
    }

    [Fact]
    public void ExistingDirectoriesExpandOneStarSegment()
    {
        string root = TestPaths.NewTempDir();
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "lib", "python3.12", "site-packages"));
            Directory.CreateDirectory(Path.Combine(root, "lib", "python3.10"));
            Assert.Equal([Path.Combine(root, "lib", "python3.12", "site-packages")],
                NativeLibraryProbe.ExistingDirectories(Path.Combine(root, "lib", "python3*", "site-packages")));
            Assert.Empty(NativeLibraryProbe.ExistingDirectories(Path.Combine(root, "nothing", "python3*", "site-packages")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void CusolverIsLookedForInCublasInstallationFirst()
    {
        Assert.Equal("/venv/site/nvidia", NativeLibraryProbe.InstallationOf("/venv/site/nvidia/cublas/lib/libcublas.so.12"));
        Assert.Equal("/venv/site/nvidia", NativeLibraryProbe.InstallationOf("/venv/site/nvidia/cusolver/lib/libcusolver.so.11"));
        Assert.Equal("/opt/cuda/lib64", NativeLibraryProbe.InstallationOf("/opt/cuda/lib64/libcusolver.so.11"));
        Assert.Equal("", NativeLibraryProbe.InstallationOf("libcusolver.so.11"));

        var probe = new NativeLibraryProbe("cuSOLVER", ["libcusolver.so.11"], ["/opt/cuda/lib64", "/venv/site/nvidia/cusolver/lib"]);
        var paired = probe.PreferInstallation("/venv/site/nvidia");
        Assert.Equal(["/venv/site/nvidia/cusolver/lib/libcusolver.so.11", "/opt/cuda/lib64/libcusolver.so.11", "libcusolver.so.11"], paired.Candidates);
    }

    [Fact]
    public void AFileThatExistsButDoesNotLoadIsReportedWithTheLoadersOwnMessage()
    {
        string dir = TestPaths.NewTempDir();
        try
        {
            File.WriteAllText(Path.Combine(dir, "libcublas.so.12"), "not an ELF file");
            var probe = new NativeLibraryProbe("cuBLAS", ["libcublas.so.12"], [dir]);
            Assert.False(probe.TryLoad(out _, out _, out string error));
            string path = Path.Combine(dir, "libcublas.so.12");
            Assert.StartsWith($"cuBLAS found but not loadable: {path}: ", error);
            Assert.Matches("invalid ELF header|file too short", error); // glibc's dlerror text
            Assert.DoesNotContain("strace", error);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void VersionsComeFromTheRealFileName()
    {
        Assert.Equal("12.4.5.8", CudaLibraries.VersionInFileName("libcublas.so.12.4.5.8"));
        Assert.Equal("11", CudaLibraries.VersionInFileName("libcusolver.so.11"));
        Assert.Null(CudaLibraries.VersionInFileName("libcublas.so"));
        string dir = TestPaths.NewTempDir();
        try
        {
            File.WriteAllText(Path.Combine(dir, "libcublas.so.11.11.3.6"), "");
            File.CreateSymbolicLink(Path.Combine(dir, "libcublas.so.11"), "libcublas.so.11.11.3.6");
            Assert.Equal("11.11.3.6", CudaLibraries.VersionOf(Path.Combine(dir, "libcublas.so.11")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void DirectoriesComeFromCudaHomeCudaPathLdLibraryPathThenTheDefault()
    {
        var dirs = NativeLibraryProbe.SearchDirectories(Env(
            ("CUDA_HOME", "/opt/cuda-12.4"), ("CUDA_PATH", "/opt/cuda-12.4/"), ("LD_LIBRARY_PATH", "/a/lib::/b/lib/:/opt/cuda-12.4/lib64")), NoFolders);
        Assert.Equal(["/opt/cuda-12.4/lib64", "/a/lib", "/b/lib", "/usr/local/cuda/lib64"], dirs);
    }

    [Fact]
    public void WithoutEnvironmentOnlyTheDefaultDirectoryAndBareNamesAreTried()
    {
        var probe = NativeLibraryProbe.ForCublas(Env(), NoFolders);
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
        var probe = NativeLibraryProbe.ForCusolver(Env(("CUDA_HOME", "/cuda"), ("LD_LIBRARY_PATH", "/x")), NoFolders);
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
        var probe = NativeLibraryProbe.ForCublas(Env(("CUDA_HOME", "/cuda")), NoFolders);
        var tried = new List<string>();
        bool found = probe.TryLoad((string path, out IntPtr handle, out string why) =>
        {
            tried.Add(path);
            handle = path == "/usr/local/cuda/lib64/libcublas.so.12" ? 42 : IntPtr.Zero;
            why = "no";
            return handle != IntPtr.Zero;
        }, _ => false, out IntPtr h, out string from, out string error);
        Assert.True(found);
        Assert.Equal(42, h);
        Assert.Equal("/usr/local/cuda/lib64/libcublas.so.12", from);
        Assert.Equal("", error);
        Assert.Equal(6, tried.Count);
    }

    [Fact]
    public void NotFoundListsEveryCandidateTried()
    {
        var probe = NativeLibraryProbe.ForCusolver(Env(("CUDA_PATH", "/cuda")), NoFolders);
        bool found = probe.TryLoad((string _, out IntPtr handle, out string why) => { handle = IntPtr.Zero; why = "No such file or directory"; return false; },
            _ => false, out _, out _, out string error);
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
