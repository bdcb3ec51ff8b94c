namespace TaskMerge.Engine.IO;

/// <summary>
/// Fault points for the crash-safety tests, driven by environment variables (not for normal use):
/// <c>TASKMERGE_TEST_PAUSE_AT=&lt;step&gt;</c> makes the process write its pid to
/// <c>TASKMERGE_TEST_READY_FILE</c> at that step and wait until that file is deleted (or the process killed);
/// <c>TASKMERGE_TEST_FAIL_AT=&lt;step&gt;[:erofs]</c> raises the I/O error "no space left on device" (or
/// "read-only file system") there; <c>TASKMERGE_TEST_NO_EXCHANGE=1</c> makes the commit take its two-rename
/// fallback. Steps: <c>begun</c> (locked, checked, staging created), <c>shard-written</c>, <c>staged</c>,
/// <c>exchanged</c>, <c>moved-aside</c> (fallback only), <c>committed</c>.
/// </summary>
internal static class TestHooks
{
    private static readonly string? PauseAt = Environment.GetEnvironmentVariable("TASKMERGE_TEST_PAUSE_AT");
    private static readonly string? FailAt = Environment.GetEnvironmentVariable("TASKMERGE_TEST_FAIL_AT");

    /// <summary>True when the commit must use its fallback instead of <c>renameat2(RENAME_EXCHANGE)</c>.</summary>
    public static bool NoExchange { get; } = Environment.GetEnvironmentVariable("TASKMERGE_TEST_NO_EXCHANGE") == "1";

    /// <summary>Pauses or fails here when the environment asks for <paramref name="step"/>.</summary>
    public static void At(string step)
    {
        if (PauseAt is null && FailAt is null) return;
        if (FailAt == step) throw new IOException($"No space left on device (injected at {step})", PosixCalls.ENOSPC);
        if (FailAt == step + ":erofs") throw new IOException($"Read-only file system (injected at {step})", PosixCalls.EROFS);
        if (PauseAt != step) return;
        if (Environment.GetEnvironmentVariable("TASKMERGE_TEST_READY_FILE") is not { Length: > 0 } ready)
        {
            Thread.Sleep(Timeout.Infinite);
            return;
        }
        File.WriteAllText(ready, $"{Environment.ProcessId}\n");
        while (File.Exists(ready)) Thread.Sleep(20);
    }
}
