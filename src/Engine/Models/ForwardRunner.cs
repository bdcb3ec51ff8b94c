using System.Runtime.InteropServices;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Models;

/// <summary>What <see cref="ForwardRunner.Run"/> did.</summary>
/// <param name="Kind">The architecture run.</param>
/// <param name="Examples">Rows of the input (images or sequences).</param>
/// <param name="Outputs">The output tensors written, in file order.</param>
public sealed record ForwardSummary(ModelKind Kind, int Examples, IReadOnlyList<TensorSpec> Outputs);

/// <summary>
/// <c>taskmerge forward MODEL INPUT OUTPUT</c>: reads the input tensors, runs the model in batches
/// on a backend and writes HF-named outputs (F32) to one safetensors file. The large
/// <c>last_hidden_state</c> is streamed batch by batch; the small outputs follow it.
/// </summary>
public static class ForwardRunner
{
    /// <summary>Runs the forward pass; <paramref name="progress"/> gets (rows done, rows total) after each batch.</summary>
    public static ForwardSummary Run(string modelPath, string inputPath, string outputPath, IBackend backend, int batchSize,
        Action<int, int>? progress = null)
    {
        if (batchSize < 1) throw new BadInputException($"--batch-size must be at least 1, got {batchSize}");
        SafetensorsSingleFile.CheckTarget(outputPath, [new(modelPath, "MODEL"), new(inputPath, "INPUT")], "OUTPUT");
        using var source = ModelSource.Open(modelPath);
        var kind = ModelKinds.Detect(source);
        using var input = SafetensorsFile.Open(inputPath);
        bool textInput = input.TryGet("input_ids", out _) && !input.TryGet("pixel_values", out _);
        return kind switch
        {
            ModelKind.ClipText => RunClipText(source, input, outputPath, backend, batchSize, progress),
            ModelKind.ClipVision when textInput => RunClipText(source, input, outputPath, backend, batchSize, progress),
            ModelKind.ClipVision => RunClip(source, input, outputPath, backend, batchSize, progress),
            _ => RunRoberta(source, input, outputPath, backend, batchSize, progress),
        };
    }

    private static TensorInfo Need(SafetensorsFile f, string name, int rank, string what)
    {
        if (!f.TryGet(name, out var t)) throw new BadInputException($"{P(f.Path)}: input tensor {Q(name)} not found ({what})");
        if (t.Rank != rank) throw new BadInputException($"{P(f.Path)}: input tensor {Q(name)} has shape {t.ShapeString}, expected {what}");
        return t;
    }

    private static ForwardSummary RunClip(ModelSource source, SafetensorsFile input, string outputPath, IBackend backend, int batchSize,
        Action<int, int>? progress)
    {
        var px = Need(input, "pixel_values", 4, "pixel_values [B, 3, H, W]");
        if (!px.DType.IsFloat()) throw new BadInputException($"{P(input.Path)}: pixel_values has dtype {px.DType.SafetensorsName()}, expected F32");
        using var model = ClipVisionModel.Load(source, backend);
        var c = model.Config;
        if (px.Shape[1] != c.NumChannels || px.Shape[2] != c.ImageSize || px.Shape[3] != c.ImageSize)
            throw new BadInputException($"{P(input.Path)}: pixel_values has shape {px.ShapeString}, the model expects [B, {c.NumChannels}, {c.ImageSize}, {c.ImageSize}]");
        int n = checked((int)px.Shape[0]), t = c.Tokens, w = c.HiddenSize, e = model.FeatureDim;
        var specs = new List<TensorSpec>
        {
            new("last_hidden_state", DType.F32, [n, t, w]),
            new("pooler_output", DType.F32, [n, w]),
        };
        if (model.HasProjection) specs.Add(new TensorSpec("image_embeds", DType.F32, [n, e]));
        int per = c.NumChannels * c.ImageSize * c.ImageSize;
        var pooled = new float[(long)n * w];
        var embeds = model.HasProjection ? new float[(long)n * e] : null;
        SafetensorsSingleFile.Write(outputPath, specs, writer =>
        {
            for (int start = 0; start < n; start += batchSize)
            {
                int b = Math.Min(batchSize, n - start);
                using var x = backend.FromHost(ReadRows(input, px, start, b, per), b, c.NumChannels, c.ImageSize, c.ImageSize);
                using var o = model.Forward(x);
                writer.WriteChunk("last_hidden_state", MemoryMarshal.AsBytes(o.LastHiddenState.ToArray().AsSpan()));
                o.PoolerOutput.ToArray().CopyTo(pooled, (long)start * w);
                o.ImageEmbeds?.ToArray().CopyTo(embeds!, (long)start * e);
                progress?.Invoke(start + b, n);
            }
            if (n == 0) writer.WriteChunk("last_hidden_state", []);
            writer.WriteFloat32("pooler_output", pooled);
            if (embeds is not null) writer.WriteFloat32("image_embeds", embeds);
        });
        return new ForwardSummary(ModelKind.ClipVision, n, specs);
    }

    private static ForwardSummary RunClipText(ModelSource source, SafetensorsFile input, string outputPath, IBackend backend, int batchSize,
        Action<int, int>? progress)
    {
        var idsInfo = Need(input, "input_ids", 2, "input_ids [B, T] I64 (CLIP text tower)");
        int[] ids = IntegerTensors.ReadInt32(input, idsInfo);
        using var model = ClipTextModel.Load(source, backend);
        int n = checked((int)idsInfo.Shape[0]), s = checked((int)idsInfo.Shape[1]), w = model.Config.HiddenSize, e = model.FeatureDim;
        if (s < 1) throw new BadInputException($"{P(input.Path)}: input_ids has shape {idsInfo.ShapeString}, expected at least one token per sequence");
        var specs = new List<TensorSpec>
        {
            new("last_hidden_state", DType.F32, [n, s, w]),
            new("pooler_output", DType.F32, [n, w]),
        };
        if (model.HasProjection) specs.Add(new TensorSpec("text_embeds", DType.F32, [n, e]));
        var pooled = new float[(long)n * w];
        var embeds = model.HasProjection ? new float[(long)n * e] : null;
        SafetensorsSingleFile.Write(outputPath, specs, writer =>
        {
            for (int start = 0; start < n; start += batchSize)
            {
                int b = Math.Min(batchSize, n - start);
                using var o = model.Forward(ids.AsSpan(start * s, b * s), b);
                writer.WriteChunk("last_hidden_state", MemoryMarshal.AsBytes(o.LastHiddenState.ToArray().AsSpan()));
                o.PoolerOutput.ToArray().CopyTo(pooled, (long)start * w);
                o.TextEmbeds?.ToArray().CopyTo(embeds!, (long)start * e);
                progress?.Invoke(start + b, n);
            }
            if (n == 0) writer.WriteChunk("last_hidden_state", []);
            writer.WriteFloat32("pooler_output", pooled);
            if (embeds is not null) writer.WriteFloat32("text_embeds", embeds);
        });
        return new ForwardSummary(ModelKind.ClipText, n, specs);
    }

    /// <summary>Rows [start, start + count) of a float tensor of <paramref name="per"/> values per row, decoded to float32.</summary>
    private static float[] ReadRows(SafetensorsFile file, TensorInfo info, int start, int count, int per)
    {
        int size = info.DType.Size();
        var bytes = new byte[(long)count * per * size];
        file.CopyBytes(info, (long)start * per * size, bytes);
        var values = new float[(long)count * per];
        FloatConvert.ToFloat(info.DType, bytes, values);
        return values;
    }

    private static ForwardSummary RunRoberta(ModelSource source, SafetensorsFile input, string outputPath, IBackend backend, int batchSize,
        Action<int, int>? progress)
    {
        var idsInfo = Need(input, "input_ids", 2, "input_ids [B, S] I64");
        int[] ids = IntegerTensors.ReadInt32(input, idsInfo);
        int[]? mask = null;
        if (input.TryGet("attention_mask", out var maskInfo))
        {
            if (!maskInfo.Shape.AsSpan().SequenceEqual(idsInfo.Shape))
                throw new BadInputException($"{P(input.Path)}: attention_mask has shape {maskInfo.ShapeString}, input_ids {idsInfo.ShapeString}");
            mask = IntegerTensors.ReadInt32(input, maskInfo);
        }
        using var model = RobertaModel.Load(source, backend);
        int n = checked((int)idsInfo.Shape[0]), s = checked((int)idsInfo.Shape[1]), w = model.Config.HiddenSize, labels = model.NumLabels;
        var specs = new List<TensorSpec> { new("last_hidden_state", DType.F32, [n, s, w]) };
        if (model.HasClassifier) specs.Add(new TensorSpec("logits", DType.F32, [n, labels]));
        var logits = new float[(long)n * labels];
        SafetensorsSingleFile.Write(outputPath, specs, writer =>
        {
            for (int start = 0; start < n; start += batchSize)
            {
                int b = Math.Min(batchSize, n - start);
                using var o = model.Forward(ids.AsSpan(start * s, b * s), b, s, mask is null ? default : mask.AsSpan(start * s, b * s));
                if (s > 0) writer.WriteChunk("last_hidden_state", MemoryMarshal.AsBytes(o.LastHiddenState.ToArray().AsSpan()));
                o.Logits?.ToArray().CopyTo(logits, (long)start * labels);
                progress?.Invoke(start + b, n);
            }
            if (n == 0 || s == 0) writer.WriteChunk("last_hidden_state", []);
            if (model.HasClassifier) writer.WriteFloat32("logits", logits);
        });
        return new ForwardSummary(ModelKind.Roberta, n, specs);
    }
}
