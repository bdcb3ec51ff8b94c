using System.Diagnostics;
using TaskMerge.Engine.Embedding;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Merge;

namespace TaskMerge.Engine.Tests.Cli;

/// <summary>
/// OUT_DIR safety (#14): inputs are never overwritten, foreign directories need --overwrite, one run per OUT_DIR,
/// all-or-nothing commits checked by killing a real CLI process at each commit step, stale leftovers removed,
/// and full-disk / read-only file systems reported as bad input.
/// </summary>
public class OutputSafetyTests
{
    private static string Zoo => Path.Combine(TestPaths.Examples, "zoo");

    /// <summary>Two configs with different outputs over the zoo; B writes more shards than A, so a mix would show.</summary>
    private static (string A, string B) Configs(string dir)
    {
        string a = Path.Combine(dir, "a.yml"), b = Path.Combine(dir, "b.yml");
        File.WriteAllText(a, $"merge_method: task_arithmetic\nbase_model: {Zoo}/base\nmodels:\n  - model: {Zoo}/expert_0\n  - model: {Zoo}/expert_1\nparameters: {{lambda: 0.3}}\n");
        File.WriteAllText(b, $"merge_method: task_arithmetic\nbase_model: {Zoo}/base\nmodels:\n  - model: {Zoo}/expert_2\n  - model: {Zoo}/expert_3\nparameters: {{lambda: 0.7}}\n");
        return (a, b);
    }

    private static string[] MergeArgs(string config, string outDir, string shard) => ["merge", config, outDir, "--device", "cpu", "--quiet", "--out-shard-size", shard];

    private static string[] ArgsA(string cfg, string outDir) => MergeArgs(cfg, outDir, "60K");

    private static string[] ArgsB(string cfg, string outDir) => MergeArgs(cfg, outDir, "100K");

    private static void AssertOneLineExit2((int Exit, string Out, string Err) r, string expected)
    {
        Assert.True(r.Exit == 2, $"exit {r.Exit}: {r.Err}{r.Out}");
        Assert.Single(r.Err.Trim().Split('\n'));
        Assert.Contains(expected, r.Err);
    }

    /// <summary>Everything beside OUT_DIR in its parent other than the listed names: staging, aside, lock or temp leftovers.</summary>
    private static void AssertNoLeftovers(string parent, params IEnumerable<string?> keep)
    {
        var extra = Directory.EnumerateFileSystemEntries(parent).Select(Path.GetFileName).Where(n => !keep.Contains(n)).ToList();
        Assert.True(extra.Count == 0, "left behind: " + string.Join(", ", extra));
    }

    private static SortedDictionary<string, string> Reference(string scratch, string[] args)
    {
        // Same leaf name as the real OUT_DIR: the model card names it.
        string dir = Path.Combine(scratch, "ref-" + Guid.NewGuid().ToString("N"), "out");
        Directory.CreateDirectory(Path.GetDirectoryName(dir)!);
        var copy = args.ToArray();
        copy[2] = dir;
        var r = CliRunner.Run(copy);
        Assert.True(r.Exit == 0, r.Err);
        return CliProcess.Snapshot(dir);
    }

    [Theory]
    [InlineData("expert", "is the model")]
    [InlineData("dotdot", "contains the base_model")]
    [InlineData("symlink", "is the base_model")]
    [InlineData("inside", "lies inside the base_model")]
    [InlineData("shard-symlink", "contains the model file")]
    public void An_out_dir_that_is_contains_or_lies_inside_an_input_is_refused_and_the_input_is_untouched(string how, string expected)
    {
        string scratch = TestPaths.NewTempDir();
        // A private copy of the zoo, so a failure cannot damage the shared example.
        string zoo = Path.Combine(scratch, "zoo");
        foreach (var d in new[] { "base", "expert_0", "expert_1" })
        {
            Directory.CreateDirectory(Path.Combine(zoo, d));
            foreach (var f in Directory.GetFiles(Path.Combine(Zoo, d))) File.Copy(f, Path.Combine(zoo, d, Path.GetFileName(f)));
        }
        string cfg = Path.Combine(scratch, "c.yml");
        File.WriteAllText(cfg, $"merge_method: task_arithmetic\nbase_model: {zoo}/base\nmodels:\n  - model: {zoo}/expert_0\n  - model: {zoo}/expert_1\n");
        string outDir = how switch
        {
            "expert" => Path.Combine(zoo, "expert_0"),
            "dotdot" => Path.Combine(zoo, "expert_0", "..", "..", "zoo"),
            "symlink" => Path.Combine(scratch, "link"),
            "inside" => Path.Combine(zoo, "base", "merged"),
            _ => Path.Combine(scratch, "holder"),
        };
        if (how == "symlink") Directory.CreateSymbolicLink(outDir, Path.Combine(zoo, "base"));
        if (how == "shard-symlink")
        {
            // As in the Hugging Face cache: the model directory's weights are symlinks into another directory.
            Directory.CreateDirectory(outDir);
            string snap = Path.Combine(scratch, "snapshot");
            Directory.CreateDirectory(snap);
            File.CreateSymbolicLink(Path.Combine(snap, "model.safetensors"), Path.Combine(outDir, "blob"));
            File.Copy(Path.Combine(zoo, "expert_1", "model.safetensors"), Path.Combine(outDir, "blob"));
            File.WriteAllText(Path.Combine(outDir, "merge_report.json"), "{}");
            File.WriteAllText(cfg, $"merge_method: task_arithmetic\nbase_model: {zoo}/base\nmodels:\n  - model: {zoo}/expert_0\n  - model: {snap}\n");
        }
        var before = CliProcess.Snapshot(zoo);
        var r = CliRunner.Run("merge", cfg, outDir, "--device", "cpu", "--quiet", "--overwrite");
        AssertOneLineExit2(r, expected);
        Assert.Equal(before, CliProcess.Snapshot(zoo));
    }

    [Theory]
    [InlineData("merge", "zoo/heads", "contains the head")]
    [InlineData("ri", "zoo/heads", "contains the head")]
    [InlineData("ri", "zoo/heads/head_0.safetensors", "is a file")]
    [InlineData("merge", "zoo/aux.safetensors/out", "is a regular file")]
    [InlineData("ri", "zoo", "contains the base_model")]
    public void Ri_outputs_may_not_overlap_heads_or_aux_data(string command, string outDir, string expected)
    {
        var before = CliProcess.Snapshot(Zoo);
        AssertOneLineExit2(CliRunner.Run(command, Path.Combine(TestPaths.Examples, "ri.yml"), Path.Combine(TestPaths.Examples, outDir), "--device", "cpu", "--quiet"), expected);
        Assert.Equal(before, CliProcess.Snapshot(Zoo));
    }

    [Fact]
    public void Ri_replaces_its_previous_output_in_one_step_and_a_kill_before_the_swap_keeps_it()
    {
        string zoo = TestPaths.NewTempDir(), scratch = TestPaths.NewTempDir();
        string cfg = RiRunCliTests.WriteZoo(zoo, openClip: false);
        string outDir = Path.Combine(scratch, "out");
        string[] args = ["ri", cfg, outDir, "--device", "cpu", "--quiet"];
        var r = CliRunner.Run(args);
        Assert.True(r.Exit == 0, r.Err);
        var first = CliProcess.Snapshot(outDir);
        Assert.Contains(Path.Combine("expert_0", "model.safetensors"), first.Keys);

        // Killed with the new output complete in staging: OUT_DIR holds the first output, plus the killed run's
        // checkpoints, which the contract keeps in OUT_DIR/.ri-checkpoints so that a rerun resumes.
        var (p, _) = CliProcess.StartPaused("staged", args);
        CliProcess.Kill(p);
        var after = CliProcess.Snapshot(outDir);
        Assert.Contains(after.Keys, k => k.StartsWith(".ri-checkpoints/", StringComparison.Ordinal));
        Assert.Equal(first, new SortedDictionary<string, string>(after.Where(kv => !kv.Key.StartsWith(".ri-checkpoints/", StringComparison.Ordinal)).ToDictionary()));

        // A previous ri output (expert directories + ri_report.json) is replaced without --overwrite.
        File.WriteAllText(Path.Combine(outDir, "expert_0", "notes.txt"), "x");
        AssertOneLineExit2(CliRunner.Run(args), "'expert_0' is not ours");
        File.Delete(Path.Combine(outDir, "expert_0", "notes.txt"));
        r = CliRunner.Run(args);
        Assert.True(r.Exit == 0, r.Err);
        // Same weights (resumed from the killed run's checkpoints, byte for byte); the report differs in timings and resumed_steps.
        var last = CliProcess.Snapshot(outDir);
        Assert.Equal(first.Keys, last.Keys);
        Assert.All(first.Where(kv => kv.Key != "ri_report.json"), kv => Assert.Equal(kv.Value, last[kv.Key]));
        AssertNoLeftovers(scratch, "out");
    }

    [Theory]
    [InlineData("", "the path is empty")]
    [InlineData("file/sub", "is a regular file")]
    [InlineData("file", "is a file")]
    [InlineData("a\0b", "NUL")]
    public void Unusable_out_dir_names_are_bad_input(string name, string expected)
    {
        string scratch = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(scratch, "file"), "x");
        string outDir = name.Length == 0 ? "" : Path.Combine(scratch, name);
        AssertOneLineExit2(CliRunner.Run("merge", Path.Combine(TestPaths.Examples, "ties.yml"), outDir, "--quiet"), expected);
        Assert.Equal("x", File.ReadAllText(Path.Combine(scratch, "file")));
    }

    [Fact]
    public void A_model_path_with_a_nul_is_bad_input()
    {
        string scratch = TestPaths.NewTempDir();
        string cfg = Path.Combine(scratch, "c.yml");
        File.WriteAllText(cfg, $"merge_method: task_arithmetic\nbase_model: {Zoo}/base\nmodels:\n  - model: \"{Zoo}/exp\\0ert_0\"\n");
        AssertOneLineExit2(CliRunner.Run("merge", cfg, Path.Combine(scratch, "out"), "--quiet"), "NUL");
        Assert.False(Directory.Exists(Path.Combine(scratch, "out")));
    }

    [Fact]
    public void A_foreign_non_empty_out_dir_needs_overwrite_and_a_previous_output_is_replaced_without_it()
    {
        string scratch = TestPaths.NewTempDir();
        var (a, b) = Configs(scratch);
        string outDir = Path.Combine(scratch, "out");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "notes.txt"), "mine");
        AssertOneLineExit2(CliRunner.Run(ArgsA(a, outDir)), "--overwrite");
        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(outDir).Select(Path.GetFileName));

        // A directory with only files TaskMerge writes but no report is not a TaskMerge output either.
        File.Delete(Path.Combine(outDir, "notes.txt"));
        File.WriteAllText(Path.Combine(outDir, "config.json"), "{}");
        AssertOneLineExit2(CliRunner.Run(ArgsA(a, outDir)), "'config.json' is not ours");

        var r = CliRunner.Run([.. ArgsA(a, outDir), "--overwrite"]);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(Reference(scratch, ArgsA(a, outDir)), CliProcess.Snapshot(outDir));
        r = CliRunner.Run(ArgsB(b, outDir));
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(Reference(scratch, ArgsB(b, outDir)), CliProcess.Snapshot(outDir));
        AssertNoLeftovers(scratch, ["out", "a.yml", "b.yml", .. Directory.GetDirectories(scratch, "ref-*").Select(Path.GetFileName)]);
    }

    [Fact]
    public void A_second_run_on_the_same_out_dir_fails_at_once_naming_the_holder_and_a_dead_holders_lock_is_taken_over()
    {
        string scratch = TestPaths.NewTempDir();
        var (a, b) = Configs(scratch);
        string outDir = Path.Combine(scratch, "out");
        var (holder, ready) = CliProcess.StartPaused("begun", ArgsA(a, outDir));
        try
        {
            var clock = Stopwatch.StartNew();
            var second = CliProcess.Run(null, ArgsB(b, outDir));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60));
            AssertOneLineExit2(second, $"pid {holder.Id}");

            // The holder goes on and finishes: its output, not a mix.
            File.Delete(ready);
            Assert.True(holder.WaitForExit(TimeSpan.FromMinutes(2)));
            Assert.Equal(0, holder.ExitCode);
            Assert.Equal(Reference(scratch, ArgsA(a, outDir)), CliProcess.Snapshot(outDir));
        }
        finally
        {
            if (!holder.HasExited) CliProcess.Kill(holder);
        }

        // A holder killed while holding the lock: the next run takes the lock over.
        var (dead, _) = CliProcess.StartPaused("begun", ArgsB(b, outDir));
        CliProcess.Kill(dead);
        Assert.True(File.Exists(Path.Combine(scratch, ".out.taskmerge.lock")));
        var r = CliProcess.Run(null, ArgsB(b, outDir));
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(Reference(scratch, ArgsB(b, outDir)), CliProcess.Snapshot(outDir));
        Assert.False(File.Exists(Path.Combine(scratch, ".out.taskmerge.lock")));
    }

    /// <summary>
    /// Kills a real CLI process (SIGKILL) at each step of the commit of output B over output A: OUT_DIR must hold
    /// exactly A's files or exactly B's (sha256 of every file), and the next run must clean up and finish.
    /// </summary>
    [Theory]
    [InlineData("begun", false, "old")]
    [InlineData("shard-written", false, "old")]
    [InlineData("staged", false, "old")]
    [InlineData("exchanged", false, "new")]
    [InlineData("committed", false, "new")]
    [InlineData("staged", true, "old")]
    [InlineData("moved-aside", true, "aside")]
    public void A_run_killed_at_any_commit_step_leaves_the_complete_old_or_new_output(string step, bool fallback, string expected)
    {
        string scratch = TestPaths.NewTempDir();
        var (a, b) = Configs(scratch);
        string outDir = Path.Combine(scratch, "out");
        var refA = Reference(scratch, ArgsA(a, outDir));
        var refB = Reference(scratch, ArgsB(b, outDir));
        Assert.NotEqual(refA.Keys, refB.Keys);
        var r = CliRunner.Run(ArgsA(a, outDir));
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(refA, CliProcess.Snapshot(outDir));

        string ready = Path.Combine(scratch, "ready");
        var env = new Dictionary<string, string> { ["TASKMERGE_TEST_PAUSE_AT"] = step, ["TASKMERGE_TEST_READY_FILE"] = ready };
        if (fallback) env["TASKMERGE_TEST_NO_EXCHANGE"] = "1";
        using (var p = CliProcess.Start(env, ArgsB(b, outDir)))
        {
            var clock = Stopwatch.StartNew();
            while (!File.Exists(ready) || new FileInfo(ready).Length == 0)
            {
                Assert.False(p.HasExited, $"exited {(p.HasExited ? p.ExitCode : 0)} before {step}");
                Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), "never reached " + step);
                Thread.Sleep(20);
            }
            CliProcess.Kill(p);
        }

        if (expected == "aside")
        {
            // The fallback's one gap: OUT_DIR renamed aside, complete, and put back by the next run.
            Assert.False(Directory.Exists(outDir));
            string aside = Assert.Single(Directory.GetDirectories(scratch, ".out.taskmerge-old-*"));
            Assert.Equal(refA, CliProcess.Snapshot(aside));
            var (again, _) = CliProcess.StartPaused("begun", ArgsB(b, outDir));
            try { Assert.Equal(refA, CliProcess.Snapshot(outDir)); }
            finally { CliProcess.Kill(again); }
        }
        else Assert.Equal(expected == "old" ? refA : refB, CliProcess.Snapshot(outDir));

        File.Delete(ready);
        r = CliRunner.Run(ArgsB(b, outDir));
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(refB, CliProcess.Snapshot(outDir));
        AssertNoLeftovers(scratch, ["out", "a.yml", "b.yml", .. Directory.GetDirectories(scratch, "ref-*").Select(Path.GetFileName)]);
    }

    [Fact]
    public void Temp_files_of_dead_runs_of_earlier_releases_inside_out_dir_are_removed()
    {
        string scratch = TestPaths.NewTempDir();
        var (a, _) = Configs(scratch);
        string outDir = Path.Combine(scratch, "out");
        Assert.Equal(0, CliRunner.Run(ArgsA(a, outDir)).Exit);
        int dead = CliProcess.DeadPid();
        string[] stale = [$".model.safetensors.tmp-{dead}", $".model-00001-of-00004.safetensors.tmp-{dead}", $"merge_report.json.tmp-{dead}", $".config.json.tmp-{dead}"];
        foreach (var s in stale) File.WriteAllBytes(Path.Combine(outDir, s), new byte[4096]);
        string live = $".model.safetensors.tmp-{Environment.ProcessId}";
        Directory.CreateDirectory(Path.Combine(scratch, $".out.taskmerge-staging-{dead}"));
        var r = CliRunner.Run(ArgsA(a, outDir));
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(Reference(scratch, ArgsA(a, outDir)), CliProcess.Snapshot(outDir));
        Assert.DoesNotContain(live, Directory.GetFiles(outDir).Select(Path.GetFileName));
        AssertNoLeftovers(scratch, ["out", "a.yml", "b.yml", .. Directory.GetDirectories(scratch, "ref-*").Select(Path.GetFileName)]);
    }

    [Fact]
    public void Not_enough_free_space_is_exit_2_before_reading_and_a_full_disk_while_writing_leaves_the_old_output()
    {
        string scratch = TestPaths.NewTempDir();
        var (a, b) = Configs(scratch);
        var refA = Reference(scratch, ArgsA(a, Path.Combine(scratch, "out")));
        using var fs = SmallFileSystem.TryMount(Path.Combine(scratch, "mnt"), 4 << 20);
        TestContext.Current.SendDiagnosticMessage(fs is not null ? "full disk: a 4 MiB tmpfs filled up (real ENOSPC)" : "full disk: mount not permitted, injected ENOSPC (TASKMERGE_TEST_FAIL_AT)");
        if (fs is not null)
        {
            AssertOneLineExit2(CliRunner.Run(ArgsA(a, fs.Path)), "is a mount point");
            // Preflight: a disk smaller than the output.
            string tiny = Path.Combine(scratch, "tiny");
            using (var t = SmallFileSystem.TryMount(tiny, 64 << 10))
                AssertOneLineExit2(CliRunner.Run(ArgsA(a, Path.Combine(tiny, "out"))), "bytes");
        }
        string root = fs?.Path ?? Path.Combine(scratch, "plain");
        Directory.CreateDirectory(root);
        string outDir = Path.Combine(root, "out");
        Assert.Equal(0, CliRunner.Run(ArgsA(a, outDir)).Exit);
        Assert.Equal(refA, CliProcess.Snapshot(outDir));

        (int, string, string) result;
        if (fs is not null)
        {
            // A real ENOSPC: the run passes the preflight, then the disk fills up before it writes.
            var (p, ready) = CliProcess.StartPaused("begun", ArgsB(b, outDir));
            fs.Fill();
            File.Delete(ready);
            var err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            result = (p.ExitCode, "", err);
            fs.Unfill();
        }
        else
            result = CliProcess.Run(new Dictionary<string, string> { ["TASKMERGE_TEST_FAIL_AT"] = "shard-written" }, ArgsB(b, outDir));
        AssertOneLineExit2(result, "no space left");
        Assert.Equal(refA, CliProcess.Snapshot(outDir));
        AssertNoLeftovers(root, "out");
    }

    [Theory]
    [InlineData("shard-written", "no space left")]
    [InlineData("staged", "no space left")]
    [InlineData("moved-aside", "no space left")]
    [InlineData("committed:erofs", "read-only file system")]
    public void An_injected_disk_fault_at_any_step_is_exit_2_with_the_old_output_kept(string fault, string expected)
    {
        // moved-aside exists only on the fallback path (no RENAME_EXCHANGE): the old output must be put back.
        var env = new Dictionary<string, string> { ["TASKMERGE_TEST_FAIL_AT"] = fault };
        if (fault == "moved-aside") env["TASKMERGE_TEST_NO_EXCHANGE"] = "1";
        string scratch = TestPaths.NewTempDir();
        var (a, b) = Configs(scratch);
        string outDir = Path.Combine(scratch, "out");
        Assert.Equal(0, CliRunner.Run(ArgsA(a, outDir)).Exit);
        var before = CliProcess.Snapshot(outDir);
        var r = CliProcess.Run(env, ArgsB(b, outDir));
        AssertOneLineExit2(r, expected);
        if (fault.StartsWith("committed", StringComparison.Ordinal)) Assert.Equal(Reference(scratch, ArgsB(b, outDir)), CliProcess.Snapshot(outDir));
        else Assert.Equal(before, CliProcess.Snapshot(outDir));
        AssertNoLeftovers(scratch, ["out", "a.yml", "b.yml", .. Directory.GetDirectories(scratch, "ref-*").Select(Path.GetFileName)]);
    }

    [Fact]
    public void A_read_only_out_dir_is_exit_2_and_unchanged()
    {
        string scratch = TestPaths.NewTempDir();
        var (a, b) = Configs(scratch);
        string outDir = Path.Combine(scratch, "rw", "out");
        Directory.CreateDirectory(Path.GetDirectoryName(outDir)!);
        Assert.Equal(0, CliRunner.Run(ArgsA(a, outDir)).Exit);
        var before = CliProcess.Snapshot(outDir);
        using var ro = SmallFileSystem.TryBindReadOnly(Path.Combine(scratch, "rw"), Path.Combine(scratch, "ro"));
        TestContext.Current.SendDiagnosticMessage(ro is not null ? "read-only: a read-only bind mount (real EROFS)" : "read-only: mount not permitted, injected EROFS (TASKMERGE_TEST_FAIL_AT)");
        var r = ro is not null
            ? CliRunner.Run(ArgsB(b, Path.Combine(ro.Path, "out")))
            : CliProcess.Run(new Dictionary<string, string> { ["TASKMERGE_TEST_FAIL_AT"] = "shard-written:erofs" }, ArgsB(b, outDir));
        AssertOneLineExit2(r, "read-only file system");
        Assert.Equal(before, CliProcess.Snapshot(outDir));
        AssertNoLeftovers(Path.Combine(scratch, "rw"), "out");
    }

    [Fact]
    public void A_cancelled_api_merge_leaves_the_previous_output_and_nothing_else()
    {
        string scratch = TestPaths.NewTempDir();
        var (a, b) = Configs(scratch);
        string outDir = Path.Combine(scratch, "out");
        Assert.Equal(0, CliRunner.Run(ArgsA(a, outDir)).Exit);
        var before = CliProcess.Snapshot(outDir);
        using var cts = new CancellationTokenSource();
        var progress = new CancelAfterFirst(cts);
        Assert.ThrowsAny<OperationCanceledException>(() =>
            MergeApi.Run(MergeApi.LoadConfig(b), outDir, new MergeOptions { OutShardBytes = 100_000 }, new MergeRunSettings { Device = "cpu" }, progress, cts.Token));
        Assert.Equal(before, CliProcess.Snapshot(outDir));
        AssertNoLeftovers(scratch, "out", "a.yml", "b.yml");
    }

    private sealed class CancelAfterFirst(CancellationTokenSource cts) : IMergeProgress
    {
        public void StageStarted(string stage, long total) { }

        public void Advance(string item, long bytes) => cts.Cancel();

        public void Warn(string message) { }
    }

    [Fact]
    public void Forward_and_heads_refuse_an_output_that_is_an_input_and_leave_no_temp_on_a_full_disk()
    {
        string scratch = TestPaths.NewTempDir();
        string model = Path.Combine(scratch, "model.safetensors");
        File.Copy(Path.Combine(Zoo, "base", "model.safetensors"), model);
        string sha = CliProcess.Snapshot(scratch)["model.safetensors"];
        AssertOneLineExit2(CliRunner.Run("forward", model, model, model, "--device", "cpu", "--quiet"), "is the MODEL");
        AssertOneLineExit2(CliRunner.Run("heads", model, "--task", "mnist", model, "--device", "cpu", "--no-cache", "--quiet"), "is the MODEL");
        Assert.Equal(sha, CliProcess.Snapshot(scratch)["model.safetensors"]);

        // The single-file writer: an injected ENOSPC leaves the old file and no temporary directory.
        string target = Path.Combine(scratch, "out.safetensors");
        File.WriteAllText(target, "old");
        int dead = CliProcess.DeadPid();
        string stale = Path.Combine(scratch, $".out.safetensors.tmp-{dead}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(stale);
        var specs = new[] { new TensorSpec("w", TaskMerge.Engine.Tensors.DType.F32, [4]) };
        SafetensorsSingleFile.Write(target, specs, w => w.WriteFloat32("w", [1, 2, 3, 4]));
        Assert.False(Directory.Exists(stale));
        using (var f = ModelSource.Open(target)) Assert.Equal([1f, 2, 3, 4], f.ReadFloat32("w"));
        var bad = Assert.Throws<BadInputException>(() => SafetensorsSingleFile.Write(target, specs, _ => throw new IOException("disk full", PosixCalls.ENOSPC)));
        Assert.Contains("no space left", bad.Message);
        using (var f = ModelSource.Open(target)) Assert.Equal([1f, 2, 3, 4], f.ReadFloat32("w"));
        Assert.Equal(["model.safetensors", "out.safetensors"], Directory.GetFileSystemEntries(scratch).Select(Path.GetFileName).Order());
    }
}

/// <summary>A small tmpfs (or a read-only bind mount) for the disk-fault tests; null when mounting is not permitted (then the tests use the injection hook).</summary>
internal sealed class SmallFileSystem : IDisposable
{
    private readonly string? _filler;

    private SmallFileSystem(string path, bool fillable)
    {
        Path = path;
        _filler = fillable ? System.IO.Path.Combine(path, ".filler") : null;
    }

    public string Path { get; }

    public static SmallFileSystem? TryMount(string path, long bytes)
    {
        Directory.CreateDirectory(path);
        return Sh("mount", "-t", "tmpfs", "-o", $"size={bytes}", "tmpfs", path) ? new SmallFileSystem(path, true) : null;
    }

    public static SmallFileSystem? TryBindReadOnly(string source, string path)
    {
        Directory.CreateDirectory(path);
        if (!Sh("mount", "--bind", source, path)) return null;
        if (Sh("mount", "-o", "remount,ro,bind", path)) return new SmallFileSystem(path, false);
        Sh("umount", path);
        return null;
    }

    /// <summary>Writes a filler file until the file system is full.</summary>
    public void Fill()
    {
        using var f = new FileStream(_filler!, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        var block = new byte[4096];
        try
        {
            while (true) f.Write(block);
        }
        catch (IOException) { }
    }

    public void Unfill() => File.Delete(_filler!);

    public void Dispose() => Sh("umount", "-l", Path);

    private static bool Sh(string file, params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
