using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>
/// The exclusive lock on one output path: an advisory <c>flock</c> on <c>.&lt;name&gt;.taskmerge.lock</c>
/// beside it, holding the owner's pid. The kernel drops the lock when its owner dies, so the lock of a
/// killed run is taken over by the next one; a live holder makes <see cref="Acquire"/> fail at once.
/// The file is removed on <see cref="Dispose"/>. Off Linux the lock is a <see cref="FileStream"/> opened
/// with <see cref="FileShare.None"/> (also released when its owner dies).
/// </summary>
internal sealed class OutputLock : IDisposable
{
    private int _fd;
    private FileStream? _stream;

    private OutputLock(string path, int fd, FileStream? stream = null)
    {
        Path = path;
        _fd = fd;
        _stream = stream;
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
        if (!OperatingSystem.IsLinux()) return AcquireManaged(path, shown);
        for (int attempt = 0; ; attempt++)
        {
            int fd;
            try { fd = PosixCalls.TryLockFile(path); }
            catch (IOException e)
            {
                throw OutputFault.Classify(e, shown, $"cannot create the lock file {P(path)}") ?? new BadInputException($"{P(shown)}: {OneLine(e.Message)}", e);
            }
            if (fd < 0) throw Held(shown, path, ReadHolder(path));
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

    private static OutputLock AcquireManaged(string path, string shown)
    {
        try
        {
            var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            fs.SetLength(0);
            fs.Write(System.Text.Encoding.UTF8.GetBytes($"{Environment.ProcessId}\n"));
            fs.Flush();
            return new OutputLock(path, -1, fs);
        }
        catch (IOException e) when (File.Exists(path) && OutputFault.Classify(e, shown, "") is null)
        {
            throw Held(shown, path, "unknown");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw OutputFault.Classify(e, shown, $"cannot create the lock file {P(path)}") ?? new BadInputException($"{P(shown)}: {OneLine(e.Message)}", e);
        }
    }

    private static BadInputException Held(string shown, string path, string holder) =>
        new($"{P(shown)}: another taskmerge run (pid {holder}) is writing this output (lock {P(path)}); wait for it or stop it");

    private static string ReadHolder(string path) =>
        int.TryParse(PosixCalls.ReadUnlocked(path)?.Trim(), out int pid) ? pid.ToString(System.Globalization.CultureInfo.InvariantCulture) : "unknown";

    /// <summary>Removes the lock file and releases the lock.</summary>
    public void Dispose()
    {
        if (_fd < 0 && _stream is null) return;
        try { File.Delete(Path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        if (_fd >= 0) PosixCalls.CloseFd(_fd);
        _stream?.Dispose();
        _fd = -1;
        _stream = null;
    }
}
