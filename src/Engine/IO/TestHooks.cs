namespace TaskMerge.Engine.IO;

/// <summary>
/// Fault points for the crash-safety tests, driven by environment variables (not for normal use):
/// <c>TASKMERGE_TEST_PAUSE_AT=&lt;step&gt;</c> makes the process write its pid to
/// <c>TASKMERGE_TEST_READY_FILE</c> at that step and sleep until killed;
/// <c>TASKMERGE_TEST_FAIL_AT=&lt;step&gt;</c> raises the I/O error "no space left on device" there.
/// Steps: <c>locked</c>, <c>shard-written</c>, <c>staged</c>, <c>exchanged</c>, <c>moved-aside</c>, <c>committed</c>.
/// </summary>
internal static class TestHooks
{
    private static readonly string? PauseAt = Environment.GetEnvironmentVariable("TASKMERGE_TEST_PAUSE_AT");
    private static readonly string? FailAt = Environment.GetEnvironmentVariable("TASKMERGE_TEST_FAIL_AT");

    /// <summary>Pauses or fails here when the environment asks for <paramref name="step"/>.</summary>
    public static void At(string step)
    {
        if (PauseAt is null && FailAt is null) return;
        if (FailAt == step) throw new IOException($"No space left on device (injected at {step})", PosixCalls.ENOSPC);
        if (PauseAt != step) return;
        if (Environment.GetEnvironmentVariable("TASKMERGE_TEST_READY_FILE") is { Length: > 0 } ready)
            File.WriteAllText(ready, $"{Environment.ProcessId}\n");
        Thread.Sleep(Timeout.Infinite);
    }
}
