using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace TaskMerge.Engine.Tests.Cli;

/// <summary>Runs the CLI as a child process (for the crash-safety tests), and snapshots output directories.</summary>
internal static class CliProcess
{
    private static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } d ? d : "dotnet";

    /// <summary>Starts <c>taskmerge ARGS</c> with extra environment variables; stdout/stderr are captured.</summary>
    public static Process Start(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo(Dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "taskmerge.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var k in new[] { "TASKMERGE_TEST_PAUSE_AT", "TASKMERGE_TEST_FAIL_AT", "TASKMERGE_TEST_READY_FILE", "TASKMERGE_TEST_NO_EXCHANGE" })
            psi.Environment.Remove(k);
        if (env is not null)
            foreach (var (k, v) in env) psi.Environment[k] = v;
        var p = Process.Start(psi)!;
        return p;
    }

    /// <summary>Runs to the end; returns exit code and output.</summary>
    public static (int Exit, string Out, string Err) Run(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        using var p = Start(env, args);
        var err = p.StandardError.ReadToEndAsync();
        string o = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); throw new TimeoutException("taskmerge did not finish: " + string.Join(' ', args)); }
        return (p.ExitCode, o, err.Result);
    }

    /// <summary>
    /// Starts <c>taskmerge ARGS</c> paused at <paramref name="step"/> and waits until it has reached it
    /// (it wrote its ready file, in a directory of its own). The caller kills it, or deletes <c>Ready</c> to let it go on.
    /// </summary>
    public static (Process Process, string Ready) StartPaused(string step, params string[] args)
    {
        string ready = Path.Combine(TestPaths.NewTempDir(), "ready");
        var p = Start(new Dictionary<string, string> { ["TASKMERGE_TEST_PAUSE_AT"] = step, ["TASKMERGE_TEST_READY_FILE"] = ready }, args);
        var clock = Stopwatch.StartNew();
        while (!File.Exists(ready) || new FileInfo(ready).Length == 0)
        {
            if (p.HasExited)
                throw new InvalidOperationException($"taskmerge exited ({p.ExitCode}) before reaching {step}: {p.StandardError.ReadToEnd()}");
            if (clock.Elapsed > TimeSpan.FromMinutes(3)) { p.Kill(true); throw new TimeoutException($"taskmerge never reached {step}"); }
            Thread.Sleep(20);
        }
        return (p, ready);
    }

    /// <summary>SIGKILLs the process and waits for it.</summary>
    public static void Kill(Process p)
    {
        p.Kill(entireProcessTree: true);
        p.WaitForExit();
    }

    /// <summary>
    /// sha256 of every file under <paramref name="dir"/> by relative path; <c>merge_report.json</c> without its
    /// <c>timings_s</c> (the only part that differs between two runs of one config).
    /// </summary>
    public static SortedDictionary<string, string> Snapshot(string dir)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
        {
            string rel = Path.GetRelativePath(dir, f);
            byte[] bytes = File.ReadAllBytes(f);
            if (Path.GetFileName(f) == "merge_report.json")
            {
                var node = JsonNode.Parse(bytes)!.AsObject();
                node.Remove("timings_s");
                bytes = System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
            }
            result[rel] = Convert.ToHexString(SHA256.HashData(bytes));
        }
        return result;
    }

    /// <summary>The pid of a process that has exited (for stale-owner tests).</summary>
    public static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        return p.Id;
    }
}
