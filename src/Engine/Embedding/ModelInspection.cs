using System.Text.Json;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Embedding;

/// <summary>A model's tensor list as JSON (what <c>taskmerge inspect MODEL</c> prints as a table).</summary>
public static class ModelInspection
{
    /// <summary>
    /// <c>{"path", "tensors": [{"name", "dtype", "shape", "bytes"}], "tensor_count", "elements", "bytes"}</c> for a
    /// safetensors file or Hugging Face directory; reads headers only.
    /// </summary>
    public static string ToJson(string path)
    {
        using var m = ModelSource.Open(path);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("path", m.Path);
            w.WriteStartArray("tensors");
            foreach (var t in m.Tensors)
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("dtype", t.DType.SafetensorsName());
                w.WriteStartArray("shape");
                foreach (long d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteNumber("bytes", t.ByteLength);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNumber("tensor_count", m.Tensors.Count);
            w.WriteNumber("elements", m.Tensors.Sum(t => t.ElementCount));
            w.WriteNumber("bytes", m.Tensors.Sum(t => t.ByteLength));
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
