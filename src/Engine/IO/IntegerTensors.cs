using System.Buffers.Binary;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>Decodes integer (and boolean) safetensors tensors such as token ids, masks and labels.</summary>
public static class IntegerTensors
{
    /// <summary>
    /// The values of an I64, I32, I16, I8, U8 or BOOL tensor as int64; any other dtype is
    /// <see cref="BadInputException"/> naming the file and tensor.
    /// </summary>
    public static long[] ReadInt64(SafetensorsFile file, TensorInfo info)
    {
        var bytes = file.GetBytes(info);
        var v = new long[info.ElementCount];
        switch (info.DType)
        {
            case DType.I64:
                for (int i = 0; i < v.Length; i++) v[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes.Slice(i * 8, 8));
                break;
            case DType.I32:
                for (int i = 0; i < v.Length; i++) v[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes.Slice(i * 4, 4));
                break;
            case DType.I16:
                for (int i = 0; i < v.Length; i++) v[i] = BinaryPrimitives.ReadInt16LittleEndian(bytes.Slice(i * 2, 2));
                break;
            case DType.I8:
                for (int i = 0; i < v.Length; i++) v[i] = (sbyte)bytes[i];
                break;
            case DType.U8 or DType.Bool:
                for (int i = 0; i < v.Length; i++) v[i] = bytes[i];
                break;
            default:
                throw new BadInputException($"{P(file.Path)}: tensor {Q(info.Name)} has dtype {info.DType.SafetensorsName()}, expected an integer type (I64)");
        }
        return v;
    }

    /// <summary><see cref="ReadInt64"/> narrowed to int32; values outside int32 are bad input.</summary>
    public static int[] ReadInt32(SafetensorsFile file, TensorInfo info)
    {
        var v = ReadInt64(file, info);
        var r = new int[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            if (v[i] is < int.MinValue or > int.MaxValue)
                throw new BadInputException($"{P(file.Path)}: tensor {Q(info.Name)} holds {v[i]}, outside the int32 range");
            r[i] = (int)v[i];
        }
        return r;
    }
}
