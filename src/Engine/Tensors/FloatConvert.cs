using System.Runtime.InteropServices;

namespace TaskMerge.Engine.Tensors;

/// <summary>
/// Bulk conversion between stored element types and float32 compute values. Rounding is
/// round-to-nearest-even, as torch's <c>.to(dtype)</c>; NaN stays NaN.
/// </summary>
public static class FloatConvert
{
    /// <summary>Decodes <paramref name="src"/> (elements of <paramref name="type"/>) into float32.</summary>
    public static void ToFloat(DType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(src)[..dst.Length].CopyTo(dst);
                break;
            case DType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src)[..dst.Length], dst);
                break;
            case DType.BF16:
            {
                var s = MemoryMarshal.Cast<byte, ushort>(src);
                var d = MemoryMarshal.Cast<float, uint>(dst);
                for (int i = 0; i < d.Length; i++) d[i] = (uint)s[i] << 16;
                break;
            }
            case DType.F64:
            {
                var s = MemoryMarshal.Cast<byte, double>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)s[i];
                break;
            }
            default:
                throw new ArgumentException($"{type} is not a floating-point type");
        }
    }

    /// <summary>Encodes float32 values as <paramref name="type"/> elements into <paramref name="dst"/>.</summary>
    public static void FromFloat(DType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (type)
        {
            case DType.F32:
                src.CopyTo(MemoryMarshal.Cast<byte, float>(dst));
                break;
            case DType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<byte, Half>(dst)[..src.Length]);
                break;
            case DType.BF16:
            {
                var d = MemoryMarshal.Cast<byte, ushort>(dst);
                for (int i = 0; i < src.Length; i++) d[i] = ToBFloat16(src[i]);
                break;
            }
            case DType.F64:
            {
                var d = MemoryMarshal.Cast<byte, double>(dst);
                for (int i = 0; i < src.Length; i++) d[i] = src[i];
                break;
            }
            default:
                throw new ArgumentException($"{type} is not a floating-point type");
        }
    }

    /// <summary>float32 → bfloat16 bits, round-to-nearest-even, NaN kept quiet.</summary>
    public static ushort ToBFloat16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if ((bits & 0x7FFF_FFFF) > 0x7F80_0000) return (ushort)((bits >> 16) | 0x0040);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>bfloat16 bits → float32.</summary>
    public static float FromBFloat16(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    /// <summary>Rounds values in place to what <paramref name="type"/> can store (a cast there and back).</summary>
    public static void RoundTo(DType type, Span<float> values)
    {
        switch (type)
        {
            case DType.F32 or DType.F64:
                return;
            case DType.BF16:
                for (int i = 0; i < values.Length; i++) values[i] = FromBFloat16(ToBFloat16(values[i]));
                return;
            case DType.F16:
                for (int i = 0; i < values.Length; i++) values[i] = (float)(Half)values[i];
                return;
            default:
                throw new ArgumentException($"{type} is not a floating-point type");
        }
    }
}
