using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>
/// The exclusive lock on one output path: an advisory <c>flock</c> on <c>.&lt;name&gt;.taskmerge.lock</c>
/// beside it, holding the owner's pid. The kernel drops the lock when its owner dies, so the lock of a
/// killed run is taken over by the next one; a live holder makes <see cref="Acquire"/> fail at once.
/// The file is removed on <see cref="Dispose"/>.
/// </summary>
internal sealed class OutputLock : IDisposable
{
    private int _fd;

    private OutputLock(string path, int fd)
    {
        Path = path;
        _fd = fd;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>The lock file of output path <paramref name="realOutput"/> (already resolved).</summary>
    public static string LockPathOf(string realOutput) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(realOutput)!, $".{System.IO.Path.GetFileName(realOutput)}.taskmerge.lock");

    /// <summary>Takes the lock of <paramref name="realOutput"/> or throws <see cref="BadInputException"/> naming the holder's pid.</summary>
    /// <param name="realOutput">The resolved output path; its parent must exist.</param>
    /// <param name="shown">The output path as the user wrote it, for messages.</param>
    public static OutputLock Acquire(string realOutput, string shown)
    {
        string path = LockPathOf(realOutput);
        for (int attempt = 0; ; attempt++)
        {
            int fd;
            try { fd = PosixCalls.TryLockFile(path); }
            catch (IOException e)
            {
                throw OutputFault.Classify(e, shown, $"cannot create the lock file {P(path)}") ?? new BadInputException($"{P(shown)}: {OneLine(e.Message)}", e);
            }
            if (fd < 0)
            {
                string holder = ReadHolder(path);
                throw new BadInputException($"{P(shown)}: another taskmerge run (pid {holder}) is writing this output (lock {P(path)}); wait for it or stop it");
            }
            // The previous owner may have unlinked the file between our open and our flock: then retry on the new file.
            if (!PosixCalls.DescriptorIsPath(fd, path) && attempt < 10)
            {
                PosixCalls.CloseFd(fd);
                continue;
            }
            PosixCalls.Rewrite(fd, $"{Environment.ProcessId}\n");
            return new OutputLock(path, fd);
        }
    }

    private static string ReadHolder(string path) =>
        int.TryParse(PosixCalls.ReadUnlocked(path)?.Trim(), out int pid) ? pid.ToString(System.Globalization.CultureInfo.InvariantCulture) : "unknown";

    /// <summary>Removes the lock file and releases the lock.</summary>
    public void Dispose()
    {
        if (_fd < 0) return;
        try { File.Delete(Path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        PosixCalls.CloseFd(_fd);
        _fd = -1;
    }
}
