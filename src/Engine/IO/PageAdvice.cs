using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace TaskMerge.Engine.IO;

/// <summary>
/// <c>madvise(MADV_DONTNEED)</c> and <c>posix_fadvise(POSIX_FADV_DONTNEED)</c> through libc, for dropping
/// consumed pages of memory-mapped inputs. Advice only: a failure (or another OS) changes nothing but memory use.
/// </summary>
internal static unsafe partial class PageAdvice
{
    private const int MadvDontNeed = 4;
    private const int FadvDontNeed = 4;
    private static readonly long PageSize = Environment.SystemPageSize;

    /// <summary>
    /// Drops the pages covering file bytes [<paramref name="start"/>, start + <paramref name="length"/>) of a
    /// mapping whose byte 0 is file offset 0 at <paramref name="mapping"/>, rounded outwards to whole pages (a
    /// neighbour's page dropped too is read back from the file on its next touch); with <paramref name="file"/>
    /// the same range also leaves the page cache.
    /// </summary>
    public static void DontNeed(byte* mapping, long start, long length, SafeFileHandle? file)
    {
        if (!OperatingSystem.IsLinux() || length <= 0) return;
        long first = start / PageSize * PageSize, end = (start + length + PageSize - 1) / PageSize * PageSize;
        _ = Madvise((nint)(mapping + first), (nuint)(end - first), MadvDontNeed);
        if (file is { IsInvalid: false, IsClosed: false })
        {
            bool added = false;
            try
            {
                file.DangerousAddRef(ref added);
                _ = PosixFadvise((int)file.DangerousGetHandle(), start, length, FadvDontNeed);
            }
            finally
            {
                if (added) file.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(int fd, long offset, long length, int advice);
}
