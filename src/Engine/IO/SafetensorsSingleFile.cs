using System.Text.RegularExpressions;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>
/// Writes one <c>.safetensors</c> file at a chosen path (not a model directory) through
/// <see cref="SafetensorsWriter"/>: the file is produced (and fsynced) in a hidden sibling directory
/// and renamed into place only when complete, then the directory is fsynced, so the path holds the
/// complete old file or the complete new one at every instant and a failed write leaves nothing behind.
/// Temporary directories that killed processes left beside the path are removed.
/// </summary>
public static partial class SafetensorsSingleFile
{
    [GeneratedRegex(@"\.tmp-(\d+)-[0-9a-f]{32}$")]
    private static partial Regex TempSuffix();

    /// <summary>
    /// Checks that <paramref name="path"/> can be written without touching an input: a usable file path in an
    /// existing directory that is none of <paramref name="inputs"/> and replaces no file inside one. Returns its real path.
    /// </summary>
    public static string CheckTarget(string path, IEnumerable<OutputInput>? inputs = null, string what = "output")
    {
        string full = OutputPaths.Resolve(path, what);
        if (Directory.Exists(full)) throw new BadInputException($"{what} {P(path)}: is a directory, expected a .safetensors file path");
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new BadInputException($"{what} {P(path)}: directory {P(dir)} does not exist");
        if (inputs is not null) OutputPaths.CheckDisjoint(full, path, what, inputs, singleFile: true);
        return full;
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (in that order) to <paramref name="path"/>;
    /// <paramref name="writeAll"/> must write every tensor's data through the writer it is given.
    /// A full disk, read-only file system or missing permission is a <see cref="BadInputException"/>.
    /// </summary>
    public static void Write(string path, IEnumerable<TensorSpec> tensors, Action<SafetensorsWriter> writeAll,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = CheckTarget(path);
        string dir = Path.GetDirectoryName(full)!, name = Path.GetFileName(full);
        RemoveDeadTemps(dir, name);
        string temp = Path.Combine(dir, $".{name}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (var w = new SafetensorsWriter(temp, tensors, long.MaxValue, metadata))
            {
                writeAll(w);
                w.Commit();
            }
            File.Move(Path.Combine(temp, ModelSource.SingleFileName), full, overwrite: true);
            PosixCalls.Fsync(dir, directory: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && OutputFault.Classify(e, path, "writing failed") is { } bad)
        {
            throw bad;
        }
        finally
        {
            try
            {
                if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    private static void RemoveDeadTemps(string dir, string name)
    {
        string[] temps;
        try { temps = Directory.GetDirectories(dir, $".{name}.tmp-*"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        foreach (string t in temps)
        {
            var m = TempSuffix().Match(t);
            if (!m.Success || !int.TryParse(m.Groups[1].Value, out int pid) || PosixCalls.ProcessAlive(pid)) continue;
            try { Directory.Delete(t, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }
}
