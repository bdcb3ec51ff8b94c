using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
                BFloat16ToFloat(MemoryMarshal.Cast<byte, ushort>(src)[..dst.Length], MemoryMarshal.Cast<float, uint>(dst));
                break;
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

    /// <summary>Elements decoded per step of <see cref="ToFloatFindNonFinite"/>: small enough that the check reads them from L1.</summary>
    private const int CheckedChunk = 4096;

    /// <summary>
    /// <see cref="ToFloat"/> fused with a scan for NaN/±Inf: decodes a cache-sized chunk, checks it while it
    /// is still in cache, and stops at the first chunk holding a non-finite value. Returns that value's
    /// index (the rest of <paramref name="dst"/> is then undefined), or −1 when every value is finite.
    /// </summary>
    public static int ToFloatFindNonFinite(DType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int size = type.Size();
        for (int i = 0; i < dst.Length; i += CheckedChunk)
        {
            int n = Math.Min(CheckedChunk, dst.Length - i);
            var chunk = dst.Slice(i, n);
            ToFloat(type, src.Slice(i * size, n * size), chunk);
            int bad = IndexOfNonFinite(chunk);
            if (bad >= 0) return i + bad;
        }
        return -1;
    }

    /// <summary>Index of the first NaN or ±Inf in <paramref name="values"/>, or −1.</summary>
    public static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        var bits = MemoryMarshal.Cast<float, uint>(values);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var exponent = Vector256.Create(0x7F80_0000u);
            for (; i + 8 <= bits.Length; i += 8)
                if (Vector256.EqualsAny(Vector256.Create(bits.Slice(i, 8)) & exponent, exponent)) break;
        }
        for (; i < bits.Length; i++)
            if ((bits[i] & 0x7F80_0000u) == 0x7F80_0000u) return i;
        return -1;
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
                FloatToBFloat16(src, MemoryMarshal.Cast<byte, ushort>(dst)[..src.Length]);
                break;
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

    private static void BFloat16ToFloat(ReadOnlySpan<ushort> s, Span<uint> d)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 16 <= s.Length; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Create(s.Slice(i, 16)));
                (lo << 16).CopyTo(d.Slice(i, 8));
                (hi << 16).CopyTo(d.Slice(i + 8, 8));
            }
        for (; i < s.Length; i++) d[i] = (uint)s[i] << 16;
    }

    private static void FloatToBFloat16(ReadOnlySpan<float> s, Span<ushort> d)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var absMask = Vector256.Create(0x7FFF_FFFFu);
            var inf = Vector256.Create(0x7F80_0000u);
            var quiet = Vector256.Create(0x0040_0000u);
            var bias = Vector256.Create(0x7FFFu);
            var one = Vector256<uint>.One;
            for (; i + 16 <= s.Length; i += 16)
            {
                var a = Round(Vector256.Create(s.Slice(i, 8)).AsUInt32());
                var b = Round(Vector256.Create(s.Slice(i + 8, 8)).AsUInt32());
                Vector256.Narrow(a, b).CopyTo(d.Slice(i, 16));
            }

            Vector256<uint> Round(Vector256<uint> bits)
            {
                var isNan = Vector256.GreaterThan(bits & absMask, inf);
                var rounded = (bits + bias + ((bits >>> 16) & one)) >>> 16;
                return Vector256.ConditionalSelect(isNan, (bits | quiet) >>> 16, rounded);
            }
        }
        for (; i < s.Length; i++) d[i] = ToBFloat16(s[i]);
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
