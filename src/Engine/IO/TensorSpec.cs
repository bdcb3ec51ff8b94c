using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.IO;

/// <summary>A tensor to be written: its name, storage dtype and shape.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DType">Storage element type.</param>
/// <param name="Shape">Dimensions, outermost first; empty for a scalar.</param>
public sealed record TensorSpec(string Name, DType DType, long[] Shape)
{
    /// <summary>Number of elements (product of <see cref="Shape"/>; 1 for a scalar).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Shape) n = checked(n * d);
            return n;
        }
    }

    /// <summary>Number of bytes the tensor occupies in the file.</summary>
    public long ByteLength => checked(ElementCount * DType.Size());

    /// <summary>The spec of an existing tensor (same name, dtype and shape).</summary>
    /// <param name="info">The tensor to copy.</param>
    public static TensorSpec From(TensorInfo info) => new(info.Name, info.DType, (long[])info.Shape.Clone());

    /// <summary>Structural equality (the shape is compared element-wise).</summary>
    public bool Equals(TensorSpec? other) =>
        other is not null && Name == other.Name && DType == other.DType && Shape.AsSpan().SequenceEqual(other.Shape);

    /// <summary>Hash consistent with <see cref="Equals(TensorSpec?)"/>.</summary>
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Name);
        h.Add(DType);
        foreach (long d in Shape) h.Add(d);
        return h.ToHashCode();
    }

    /// <summary>A one-line description: name, dtype and shape.</summary>
    public override string ToString() => $"{Name} {DType.SafetensorsName()} {TensorInfo.FormatShape(Shape)}";
}
