using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>
/// Opens input files for reading only when they are regular files: a FIFO, a device, a socket or a
/// directory is a <see cref="BadInputException"/>, never a read that blocks. On Unix the file is opened
/// with <c>O_NONBLOCK</c> (so opening a FIFO without a writer returns at once) and its type is taken
/// from <c>fstat</c> on the opened descriptor, so a path swapped between a check and the open cannot
/// slip through.
/// </summary>
public static unsafe class RegularFile
{
    /// <summary>Opens <paramref name="path"/> for reading; <paramref name="shown"/> starts every error message.</summary>
    public static FileStream OpenRead(string path, string shown)
    {
        if (path.Contains('\0')) throw new BadInputException($"{shown}: path contains a NUL character");
        if (OperatingSystem.IsWindows())
        {
            try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw CannotOpen(shown, e.Message, e); }
        }
        int flags = OperatingSystem.IsMacOS() ? 0x0004 | 0x0100_0000 // O_NONBLOCK | O_CLOEXEC
            : OperatingSystem.IsFreeBSD() ? 0x0004 | 0x0010_0000
            : 0x0800 | 0x8_0000;
        int fd;
        byte[] name = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = name) fd = Libc.Open(p, flags);
        if (fd < 0)
        {
            int errno = Marshal.GetLastSystemError();
            if (errno is 2 or 20) throw new BadInputException($"{shown}: file not found"); // ENOENT, ENOTDIR
            throw CannotOpen(shown, Marshal.GetPInvokeErrorMessage(errno), null);
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            string? kind = NonRegularKind(fd);
            if (kind is not null) throw new BadInputException($"{shown}: is {kind}, not a regular file");
            return new FileStream(handle, FileAccess.Read, 1);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The whole file <paramref name="path"/> (a regular file), at most <paramref name="maxBytes"/> bytes long.</summary>
    public static byte[] ReadAllBytes(string path, string shown, long maxBytes = int.MaxValue)
    {
        using var fs = OpenRead(path, shown);
        try
        {
            long length = fs.Length;
            if (length > maxBytes) throw new BadInputException($"{shown}: file is {length} bytes; at most {maxBytes} are read");
            var bytes = new byte[length];
            fs.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"{shown}: cannot read: {OneLine(e.Message)}", e);
        }
    }

    private static BadInputException CannotOpen(string shown, string reason, Exception? inner) =>
        inner is null ? new($"{shown}: cannot open: {OneLine(reason)}") : new($"{shown}: cannot open: {OneLine(reason)}", inner);

    /// <summary>Null for a regular file, else what the descriptor is ("a FIFO", "a directory", …).</summary>
    private static string? NonRegularKind(int fd)
    {
        uint mode = StatMode(fd);
        return (mode & 0xF000) switch
        {
            0x8000 => null,
            0x1000 => "a FIFO",
            0x2000 => "a character device",
            0x6000 => "a block device",
            0x4000 => "a directory",
            0xC000 => "a socket",
            _ => "not a regular file",
        };
    }

    /// <summary><c>st_mode</c> of the open descriptor.</summary>
    private static uint StatMode(int fd)
    {
        // struct stat differs by platform; only the offset and width of st_mode matter here.
        byte* buf = stackalloc byte[512];
        int rc = Libc.Fstat is not null ? Libc.Fstat(fd, buf)
            : Libc.Fxstat(RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 1 : 0, fd, buf);
        if (rc != 0) throw new IOException("fstat failed: " + Marshal.GetPInvokeErrorMessage(Marshal.GetLastSystemError()));
        if (OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD()) return *(ushort*)(buf + (OperatingSystem.IsMacOS() ? 4 : 24));
        return RuntimeInformation.ProcessArchitecture == Architecture.X64 ? *(uint*)(buf + 24) : *(uint*)(buf + 16);
    }

    /// <summary>
    /// open/fstat from the C library the process already has loaded (looked up through the main program, so no
    /// library name has to be guessed); glibc before 2.33 exports fstat only as __fxstat.
    /// </summary>
    private static class Libc
    {
        private static readonly IntPtr Main = NativeLibrary.GetMainProgramHandle();
        public static readonly delegate* unmanaged<byte*, int, int> Open = (delegate* unmanaged<byte*, int, int>)NativeLibrary.GetExport(Main, "open");
        public static readonly delegate* unmanaged<int, byte*, int> Fstat = (delegate* unmanaged<int, byte*, int>)Export("fstat");
        public static readonly delegate* unmanaged<int, int, byte*, int> Fxstat = (delegate* unmanaged<int, int, byte*, int>)Export("__fxstat");

        private static IntPtr Export(string name) => NativeLibrary.TryGetExport(Main, name, out IntPtr p) ? p : IntPtr.Zero;
    }
}
