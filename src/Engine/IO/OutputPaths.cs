using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>An input a run reads (a model, head or data file or directory) and what it is, for messages.</summary>
/// <param name="Path">The path as the config or command line resolves it.</param>
/// <param name="Role">What it is: <c>base_model</c>, <c>model</c>, <c>head</c>, <c>aux_data</c>, <c>config</c>, …</param>
public sealed record OutputInput(string Path, string Role);

/// <summary>
/// Checks of an output path before anything is written: a usable name, its real location (symlinks
/// and <c>..</c> resolved), and that it neither is, contains nor lies inside any input.
/// </summary>
public static class OutputPaths
{
    /// <summary>
    /// The real absolute path <paramref name="path"/> names (the longest existing prefix resolved through
    /// symlinks, the rest appended); bad input when it is empty, holds a NUL, or lies under a regular file.
    /// </summary>
    /// <param name="path">The path as given.</param>
    /// <param name="what">What it is, for messages (<c>OUT_DIR</c>, <c>OUTPUT</c>, …).</param>
    public static string Resolve(string path, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0) throw new BadInputException($"{what}: the path is empty");
        if (path.Contains('\0')) throw new BadInputException($"{what} {Q(path)}: the path contains a NUL character");
        // Not normalised first: ".." after a symlink means the symlink target's parent, as for the kernel.
        string full = Path.IsPathRooted(path) ? path : Path.Combine(Environment.CurrentDirectory, path);
        full = full.TrimEnd('/');
        if (full.Length == 0) full = "/";
        var rest = new Stack<string>();
        string probe = full;
        while (true)
        {
            string? real = PosixCalls.RealPath(probe, out int errno);
            if (real is not null)
            {
                if (rest.Count > 0 && File.Exists(real))
                    throw new BadInputException($"{what} {P(path)}: {P(real)} is a regular file, so nothing can be created under it");
                string joined = rest.Aggregate(real, Path.Combine);
                return rest.Any(c => c is "." or "..") ? Path.GetFullPath(joined) : joined;
            }
            if (errno == PosixCalls.ENOTDIR)
                throw new BadInputException($"{what} {P(path)}: a part of the path is a regular file, so nothing can be created under it");
            string? parent = Path.GetDirectoryName(probe);
            if (parent is null) return full;
            rest.Push(Path.GetFileName(probe));
            probe = parent;
        }
    }

    /// <summary>
    /// Bad input when the resolved output <paramref name="realOutput"/> is, contains or lies inside one of
    /// <paramref name="inputs"/> (each resolved through symlinks; a missing input is skipped: its own check reports it).
    /// A <paramref name="singleFile"/> output may be a new file inside an input directory, but never replace a file there.
    /// </summary>
    public static void CheckDisjoint(string realOutput, string shown, string what, IEnumerable<OutputInput> inputs, bool singleFile = false)
    {
        bool replacesFile = File.Exists(realOutput);
        foreach (var input in inputs)
        {
            if (string.IsNullOrEmpty(input.Path) || input.Path.Contains('\0')) continue;
            string? real = PosixCalls.RealPath(input.Path, out _);
            if (real is null) continue;
            string relation = real == realOutput ? "is"
                : IsInside(real, realOutput) ? "contains"
                : IsInside(realOutput, real) && (!singleFile || replacesFile) ? "lies inside"
                : "";
            if (relation.Length > 0)
                throw new BadInputException($"{what} {P(shown)} {relation} the {input.Role} {P(input.Path)}{(real != input.Path.TrimEnd('/') ? $" ({P(real)})" : "")}; choose another output path, inputs are never overwritten");
        }
    }

    /// <summary>True when <paramref name="path"/> lies strictly below directory <paramref name="dir"/> (both real, absolute).</summary>
    private static bool IsInside(string path, string dir) =>
        path.Length > dir.Length && path.StartsWith(dir, StringComparison.Ordinal) && (dir == "/" || path[dir.Length] == '/');
}

/// <summary>Turns the I/O errors a user can fix (full disk, read-only file system, no permission) into <see cref="BadInputException"/>.</summary>
internal static class OutputFault
{
    private const int CorEIo = unchecked((int)0x80131620);

    /// <summary>
    /// The bad-input error for <paramref name="e"/>, or null when it is not one the user can fix.
    /// <paramref name="spaceShort"/> says whether the file system is now short of the planned bytes, which is how a
    /// failed preallocation (reported without an errno) is recognised.
    /// </summary>
    public static BadInputException? Classify(Exception e, string shown, string doing, Func<bool>? spaceShort = null, string? need = null)
    {
        int errno = e is IOException io ? io.HResult : 0;
        string? why = errno switch
        {
            PosixCalls.ENOSPC or PosixCalls.EDQUOT => "no space left on the device",
            PosixCalls.EROFS => "read-only file system",
            PosixCalls.EACCES or PosixCalls.EPERM => "permission denied",
            _ when e is UnauthorizedAccessException => "permission denied",
            CorEIo when spaceShort?.Invoke() == true => "no space left on the device",
            _ => null,
        };
        if (why is null) return null;
        return new BadInputException($"{P(shown)}: {doing}: {why}{need}", e);
    }
}
