using System.Diagnostics;

namespace TaskMerge.Engine.Tests.Scripts;

/// <summary>
/// <c>scripts/gpu-smoke.sh</c> (shipped at the bundle's root) parses, and its step bookkeeping works: run
/// against a fake bundle whose test and bench programs are stubs with chosen exit codes, it writes one
/// summary line per step with that status, the device verdict, and exits 1 when a step failed.
/// </summary>
public sealed class GpuSmokeScriptTests
{
    private static string Script(string name)
    {
        string inCheckout = Path.Combine(TestPaths.RepoRoot, "scripts", name);
        return File.Exists(inCheckout) ? inCheckout : Path.Combine(TestPaths.RepoRoot, name);
    }

    private static (int Exit, string Output) Bash(params string[] args)
    {
        var start = new ProcessStartInfo("bash", args) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment.Remove("SMOKE_TIES_LAYERS");
        using var p = Process.Start(start)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    [Theory]
    [InlineData("gpu-smoke.sh")]
    [InlineData("run-gpu-suite.sh")]
    public void TheGpuScriptsParse(string name)
    {
        var (exit, output) = Bash("-n", Script(name));
        Assert.True(exit == 0, output);
    }

    [Fact]
    public void EveryStepIsRecordedWithItsExitStatusAndAFailureFailsTheRun()
    {
        string bundle = TestPaths.NewTempDir();
        try
        {
            Directory.CreateDirectory(Path.Combine(bundle, "bin"));
            File.Copy(Script("gpu-smoke.sh"), Path.Combine(bundle, "gpu-smoke.sh"));
            File.WriteAllText(Path.Combine(bundle, "COMMIT"), "abc123\n");
            // The bench stub fails the TIES step only; the test stub passes.
            File.WriteAllText(Path.Combine(bundle, "bin", "TaskMerge.Engine.Tests"), "#!/bin/sh\necho tests ran \"$@\"\nexit 0\n");
            File.WriteAllText(Path.Combine(bundle, "bin", "TaskMerge.Bench"), "#!/bin/sh\necho bench \"$1\"\n[ \"$1\" = e2e-ties ] && exit 3\nexit 0\n");
            Assert.Equal(0, Bash("-c", $"chmod +x '{bundle}'/bin/*").Exit);
            string results = Path.Combine(bundle, "results");

            var (exit, output) = Bash(Path.Combine(bundle, "gpu-smoke.sh"), results);

            Assert.True(exit == 1, output);
            string[] summary = File.ReadAllLines(Path.Combine(results, "summary.txt"));
            Assert.Equal(5, summary.Length);
            Assert.Matches(@"^GPU tests\s+exit\s+0\s", summary[0]);
            Assert.Matches(@"^WUDI ViT-B/32 8 experts\s+exit\s+0\s", summary[1]);
            Assert.Matches(@"^TIES e2e \(6 layers\)\s+exit\s+3\s", summary[2]);
            Assert.Matches(@"^CLIP ViT-B/32 forward\s+exit\s+0\s", summary[3]);
            Assert.StartsWith("device: ", summary[4]);
            Assert.Contains("bundle commit: abc123", File.ReadAllText(Path.Combine(results, "device.txt")));
            Assert.Contains("-namespace TaskMerge.Engine.Tests.Gpu", File.ReadAllText(Path.Combine(results, "gpu-tests.log")));
            Assert.Equal("bench e2e-wudi", File.ReadAllText(Path.Combine(results, "wudi.md")).Trim());
            Assert.False(Directory.Exists(Path.Combine(results, "scratch")));
        }
        finally
        {
            Directory.Delete(bundle, recursive: true);
        }
    }
}
