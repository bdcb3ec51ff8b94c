using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Models;

/// <summary>
/// Reads named float tensors of a checkpoint with their expected shapes and puts them on a
/// backend. A missing tensor or a shape that differs from the config is bad input naming both.
/// </summary>
internal sealed class WeightReader(ModelSource source, IBackend backend)
{
    /// <summary>The checkpoint.</summary>
    public ModelSource Source { get; } = source;

    /// <summary>The backend tensors are created on.</summary>
    public IBackend Backend { get; } = backend;

    /// <summary>True when the checkpoint has a tensor named <paramref name="name"/>.</summary>
    public bool Has(string name) => Source.Contains(name);

    /// <summary>The shape of tensor <paramref name="name"/>.</summary>
    public long[] ShapeOf(string name) => Source.Get(name).Shape;

    /// <summary>Decodes tensor <paramref name="name"/> to float32 after checking its shape.</summary>
    public float[] Read(string name, params int[] shape)
    {
        if (!Source.TryGet(name, out var info))
            throw new BadInputException($"{P(Source.Path)}: tensor {Q(name)} not found");
        if (!info.Shape.AsSpan().SequenceEqual(shape.Select(d => (long)d).ToArray()))
            throw new BadInputException(
                $"{P(Source.Path)}: tensor {Q(name)} has shape {info.ShapeString}, expected {TensorInfo.FormatShape(shape.Select(d => (long)d).ToArray())} from the model config");
        if (!info.DType.IsFloat())
            throw new BadInputException($"{P(Source.Path)}: tensor {Q(name)} has dtype {info.DType.SafetensorsName()}, not a floating-point type");
        return Source.ReadFloat32(name);
    }

    /// <summary>Loads tensor <paramref name="name"/> onto the backend with <paramref name="shape"/>.</summary>
    public Tensor Load(string name, params int[] shape) => Backend.FromHost(Read(name, shape), shape);
}
