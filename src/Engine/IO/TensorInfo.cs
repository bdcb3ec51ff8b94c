using System.Text;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.IO;

/// <summary>
/// One tensor entry of a safetensors header: its name, element type, shape and the byte range
/// it occupies. <see cref="Begin"/> and <see cref="End"/> are relative to the start of the data
/// section (the byte after the header), as in the file format. Equality compares all fields,
/// the shape element-wise.
/// </summary>
/// <param name="Name">Tensor name as written in the header.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions, outermost first; empty for a scalar.</param>
/// <param name="Begin">First byte of the tensor, relative to the data section.</param>
/// <param name="End">One past the last byte of the tensor, relative to the data section.</param>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of bytes the tensor occupies (<see cref="End"/> − <see cref="Begin"/>).</summary>
    public long ByteLength => End - Begin;

    /// <summary>Number of elements (product of <see cref="Shape"/>; 1 for a scalar).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Shape) n *= d;
            return n;
        }
    }

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Length;

    /// <summary>The shape formatted as <c>[a, b, ...]</c>.</summary>
    public string ShapeString => FormatShape(Shape);

    /// <summary>Structural equality (the shape is compared element-wise).</summary>
    public bool Equals(TensorInfo? other) =>
        other is not null && Name == other.Name && DType == other.DType && Begin == other.Begin &&
        End == other.End && Shape.AsSpan().SequenceEqual(other.Shape);

    /// <summary>Hash consistent with <see cref="Equals(TensorInfo?)"/>.</summary>
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Name);
        h.Add(DType);
        h.Add(Begin);
        h.Add(End);
        foreach (long d in Shape) h.Add(d);
        return h.ToHashCode();
    }

    /// <summary>A one-line description: name, dtype, shape and byte range.</summary>
    public override string ToString() =>
        $"{Name} {DType.SafetensorsName()} {ShapeString} [{Begin}, {End})";

    /// <summary>Formats a shape as <c>[a, b, ...]</c>.</summary>
    public static string FormatShape(ReadOnlySpan<long> shape)
    {
        var sb = new StringBuilder("[");
        for (int i = 0; i < shape.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(shape[i]);
        }
        return sb.Append(']').ToString();
    }
}
