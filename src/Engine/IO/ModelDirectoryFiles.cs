using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>Helpers for the non-weight files of a Hugging Face model directory.</summary>
public static class ModelDirectoryFiles
{
    /// <summary>
    /// Copies <c>config.json</c> into <paramref name="outDir"/> atomically (temporary file, then rename).
    /// When <paramref name="newTorchDtype"/> is given, the top-level <c>torch_dtype</c> and
    /// <c>dtype</c> entries are set to its torch name (<c>torch_dtype</c> is added when neither is
    /// present); everything else is preserved. The result is written indented.
    /// </summary>
    /// <param name="srcConfigJson">Source <c>config.json</c>; null to do nothing.</param>
    /// <param name="outDir">Output directory (created if needed).</param>
    /// <param name="newTorchDtype">Storage dtype of the written weights, or null to keep the config's.</param>
    /// <param name="edit">Further changes to the config (e.g. a frankenmerge's layer count), or null.</param>
    /// <returns>The path written, or null when <paramref name="srcConfigJson"/> is null.</returns>
    public static string? CopyConfig(string? srcConfigJson, string outDir, DType? newTorchDtype, Action<JsonObject>? edit = null)
    {
        ArgumentNullException.ThrowIfNull(outDir);
        if (srcConfigJson is null) return null;
        string p = P(srcConfigJson);
        if (!File.Exists(srcConfigJson)) throw new BadInputException($"{p}: file not found");

        JsonNode? root;
        try
        {
            byte[] bytes = RegularFile.ReadAllBytes(srcConfigJson, p);
            JsonSurrogates.Check(bytes, p);
            root = JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions
            {
                AllowTrailingCommas = true,
                CommentHandling = JsonCommentHandling.Skip,
            });
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{p}: not valid JSON: {OneLine(e.Message)}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"{p}: cannot read: {OneLine(e.Message)}", e);
        }
        if (root is not JsonObject obj) throw new BadInputException($"{p}: config must be a JSON object");

        if (newTorchDtype is DType dt)
        {
            string name = dt.TorchName();
            bool hasTorch = obj.ContainsKey("torch_dtype"), hasDtype = obj.ContainsKey("dtype");
            if (hasTorch || !hasDtype) obj["torch_dtype"] = name;
            if (hasDtype) obj["dtype"] = name;
        }

        edit?.Invoke(obj);
        Directory.CreateDirectory(outDir);
        string final = Path.Combine(outDir, "config.json");
        WriteJsonAtomic(final, obj);
        return final;
    }

    /// <summary>Writes <paramref name="node"/> indented to <paramref name="path"/> via a temporary file and a rename.</summary>
    /// <param name="path">Destination file.</param>
    /// <param name="node">JSON to write.</param>
    public static void WriteJsonAtomic(string path, JsonNode node)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(node);
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string temp = Path.Combine(dir, $".{Path.GetFileName(path)}.tmp-{Environment.ProcessId}");
        try
        {
            using (var fs = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                using (var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
                    node.WriteTo(w);
                fs.WriteByte((byte)'\n');
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }
}
