using System.Runtime.InteropServices;

namespace TaskMerge.Engine.IO;

/// <summary>
/// The few libc calls the output commit needs and .NET does not expose: real paths, an atomic
/// directory exchange, advisory locks, directory fsync and file-system statistics. Each returns a
/// "not available" result instead of throwing where the platform lacks the call, so callers can fall back.
/// </summary>
internal static unsafe partial class PosixCalls
{
    private const string Libc = "libc";
    private const int AtFdCwd = -100;
    private const uint RenameNoReplace = 1, RenameExchange = 2;
    private const int ORdOnly = 0, ORdWr = 2, OCreat = 0x40, ODirectory = 0x10000, OCloexec = 0x80000;
    private const int LockEx = 2, LockNb = 4;
    private const ulong StRdOnly = 1;

    /// <summary>errno values the callers tell apart.</summary>
    public const int ENOENT = 2, ESRCH = 3, EACCES = 13, EEXIST = 17, ENOTDIR = 20, EINVAL = 22, ENOSPC = 28, EROFS = 30,
        EWOULDBLOCK = 11, ENOSYS = 38, EDQUOT = 122, EPERM = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct StatVfs
    {
        public ulong Bsize, Frsize, Blocks, Bfree, Bavail, Files, Ffree, Favail, Fsid, Flag, Namemax;
        public fixed int Spare[6];
    }

    [LibraryImport(Libc, EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr RealPathNative(string path, IntPtr resolved);

    [LibraryImport(Libc, EntryPoint = "free")]
    private static partial void Free(IntPtr p);

    [LibraryImport(Libc, EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int oldDir, string oldPath, int newDir, string newPath, uint flags);

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport(Libc, EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport(Libc, EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncNative(int fd);

    [LibraryImport(Libc, EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int op);

    [LibraryImport(Libc, EntryPoint = "ftruncate", SetLastError = true)]
    private static partial int Ftruncate(int fd, long length);

    [LibraryImport(Libc, EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint Pwrite(int fd, byte* buf, nint count, long offset);

    [LibraryImport(Libc, EntryPoint = "pread", SetLastError = true)]
    private static partial nint Pread(int fd, byte* buf, nint count, long offset);

    [LibraryImport(Libc, EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int sig);

    [LibraryImport(Libc, EntryPoint = "statvfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatVfsNative(string path, StatVfs* buf);

    private static bool Linux => OperatingSystem.IsLinux();

    /// <summary>The canonical path of an existing file or directory (symlinks and <c>..</c> resolved), or null with <paramref name="errno"/>.</summary>
    public static string? RealPath(string path, out int errno)
    {
        errno = 0;
        if (!Linux) return File.Exists(path) || Directory.Exists(path) ? Path.GetFullPath(path) : Fail(ENOENT, out errno);
        IntPtr p = RealPathNative(path, IntPtr.Zero);
        if (p == IntPtr.Zero)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        try { return Marshal.PtrToStringUTF8(p); }
        finally { Free(p); }
    }

    private static string? Fail(int e, out int errno)
    {
        errno = e;
        return null;
    }

    /// <summary>
    /// Swaps two existing directories in one step (<c>renameat2(RENAME_EXCHANGE)</c>); false when the
    /// platform or file system cannot (the caller falls back), an <see cref="IOException"/> for other errors.
    /// </summary>
    public static bool TryExchange(string a, string b)
    {
        if (!Linux) return false;
        try
        {
            if (RenameAt2(AtFdCwd, a, AtFdCwd, b, RenameExchange) == 0) return true;
        }
        catch (EntryPointNotFoundException) { return false; }
        int e = Marshal.GetLastPInvokeError();
        if (e is EINVAL or ENOSYS or EPERM) return false;
        throw Error(e, $"cannot exchange {a} and {b}");
    }

    /// <summary>Renames <paramref name="from"/> to <paramref name="to"/>, failing (instead of replacing) when <paramref name="to"/> exists.</summary>
    public static void RenameNoReplaceOrThrow(string from, string to)
    {
        if (Linux)
        {
            try
            {
                if (RenameAt2(AtFdCwd, from, AtFdCwd, to, RenameNoReplace) == 0) return;
                int e = Marshal.GetLastPInvokeError();
                if (e is not (EINVAL or ENOSYS)) throw Error(e, $"cannot rename {from} to {to}");
            }
            catch (EntryPointNotFoundException) { }
        }
        if (Directory.Exists(to) || File.Exists(to)) throw new IOException($"cannot rename {from} to {to}: destination exists", EEXIST);
        Directory.Move(from, to);
    }

    /// <summary>fsyncs a file or directory (directories: so the names in it are durable); a no-op off Linux.</summary>
    public static void Fsync(string path, bool directory)
    {
        if (!Linux) return;
        int fd = Open(path, ORdOnly | OCloexec | (directory ? ODirectory : 0), 0);
        if (fd < 0) throw Error(Marshal.GetLastPInvokeError(), $"cannot open {path} to sync it");
        try
        {
            if (FsyncNative(fd) != 0)
            {
                int e = Marshal.GetLastPInvokeError();
                if (e != EINVAL) throw Error(e, $"cannot sync {path}");
            }
        }
        finally { Close(fd); }
    }

    /// <summary>Bytes available to an unprivileged writer and whether the file system is mounted read-only, for the file system holding <paramref name="existingPath"/>.</summary>
    public static (long Available, bool ReadOnly)? FileSystemSpace(string existingPath)
    {
        if (!Linux)
        {
            try { return (new DriveInfo(existingPath).AvailableFreeSpace, false); }
            catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return null; }
        }
        StatVfs s;
        if (StatVfsNative(existingPath, &s) != 0) return null;
        ulong avail = s.Bavail * (s.Frsize != 0 ? s.Frsize : s.Bsize);
        return ((long)Math.Min(avail, long.MaxValue), (s.Flag & StRdOnly) != 0);
    }

    /// <summary>The file-system id (<c>statvfs</c>'s <c>f_fsid</c>) of <paramref name="existingPath"/>; null when unknown.</summary>
    public static ulong? FileSystemId(string existingPath)
    {
        if (!Linux) return null;
        StatVfs s;
        return StatVfsNative(existingPath, &s) == 0 && s.Fsid != 0 ? s.Fsid : null;
    }

    /// <summary>True unless the kernel says no process <paramref name="pid"/> exists (off Linux: always true).</summary>
    public static bool ProcessAlive(int pid)
    {
        if (pid <= 0) return false;
        if (!Linux) return true;
        return Kill(pid, 0) == 0 || Marshal.GetLastPInvokeError() != ESRCH;
    }

    /// <summary>Opens (creating) <paramref name="path"/> and takes a non-blocking exclusive <c>flock</c>; the descriptor, or −1 when another process holds it.</summary>
    public static int TryLockFile(string path)
    {
        int fd = Open(path, ORdWr | OCreat | OCloexec, 0x1A4 /* 0644 */);
        if (fd < 0) throw Error(Marshal.GetLastPInvokeError(), $"cannot create lock file {path}");
        if (Flock(fd, LockEx | LockNb) == 0) return fd;
        int e = Marshal.GetLastPInvokeError();
        Close(fd);
        if (e == EWOULDBLOCK) return -1;
        throw Error(e, $"cannot lock {path}");
    }

    /// <summary>Replaces the content of the locked file <paramref name="fd"/> with <paramref name="text"/>.</summary>
    public static void Rewrite(int fd, string text)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(text);
        Ftruncate(fd, 0);
        fixed (byte* b = bytes) Pwrite(fd, b, bytes.Length, 0);
    }

    /// <summary>
    /// The first bytes of <paramref name="path"/> as text, read without taking a lock (a .NET
    /// <see cref="FileStream"/> would take a shared <c>flock</c> and fail on a locked file); null when unreadable.
    /// </summary>
    public static string? ReadUnlocked(string path, int maxBytes = 64)
    {
        int fd = Open(path, ORdOnly | OCloexec, 0);
        if (fd < 0) return null;
        try
        {
            var buf = new byte[maxBytes];
            nint n;
            fixed (byte* b = buf) n = Pread(fd, b, buf.Length, 0);
            return n < 0 ? null : System.Text.Encoding.UTF8.GetString(buf, 0, (int)n);
        }
        finally { Close(fd); }
    }

    /// <summary>True when descriptor <paramref name="fd"/> still is the file named <paramref name="path"/> (not unlinked or replaced since it was opened).</summary>
    public static bool DescriptorIsPath(int fd, string path)
    {
        if (!Linux) return true;
        try
        {
            var target = new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
            return target is null || target == path;
        }
        catch (IOException) { return true; }
    }

    /// <summary>Releases the lock and closes the descriptor.</summary>
    public static void CloseFd(int fd) => Close(fd);

    private static IOException Error(int errno, string what) =>
        new($"{what}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
}
