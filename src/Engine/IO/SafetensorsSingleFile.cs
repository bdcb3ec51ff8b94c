using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>
/// Writes one <c>.safetensors</c> file at a chosen path (not a model directory) through
/// <see cref="SafetensorsWriter"/>: the file is produced in a hidden sibling directory and moved into
/// place only when complete, so a failed write leaves no partial file.
/// </summary>
public static class SafetensorsSingleFile
{
    /// <summary>
    /// Writes <paramref name="tensors"/> (in that order) to <paramref name="path"/>;
    /// <paramref name="writeAll"/> must write every tensor's data through the writer it is given.
    /// </summary>
    public static void Write(string path, IEnumerable<TensorSpec> tensors, Action<SafetensorsWriter> writeAll,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new BadInputException($"{P(path)}: is a directory, expected a .safetensors file path");
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new BadInputException($"{P(path)}: directory {P(dir)} does not exist");
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (var w = new SafetensorsWriter(temp, tensors, long.MaxValue, metadata))
            {
                writeAll(w);
                w.Commit();
            }
            File.Move(Path.Combine(temp, ModelSource.SingleFileName), full, overwrite: true);
        }
        finally
        {
            try
            {
                if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
            catch (IOException) { }
        }
    }
}
