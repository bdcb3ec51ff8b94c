using System.Runtime.InteropServices;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using Xunit;

namespace TaskMerge.Engine.Tests.IO;

/// <summary>
/// F16/BF16 rounding through the writer and reader, checked against a reference written here from
/// first principles: decode every 16-bit pattern to a double, then pick the nearest, ties to even.
/// </summary>
public class FloatConversionTests
{
    private sealed class Format
    {
        public required int ExpBits;
        public required int MantBits;
        public ushort InfBits => (ushort)(((1 << ExpBits) - 1) << MantBits);

        /// <summary>Value of a non-negative pattern; the infinity pattern counts as 2^(emax+1) so overflow rounds like IEEE.</summary>
        public double Value(int bits)
        {
            int exp = bits >> MantBits, mant = bits & ((1 << MantBits) - 1);
            int bias = (1 << (ExpBits - 1)) - 1;
            if (exp == 0) return mant * Math.Pow(2, 1 - bias - MantBits);
            return ((1 << MantBits) + mant) * Math.Pow(2, exp - bias - MantBits);
        }

        public ushort Round(float x)
        {
            uint fb = BitConverter.SingleToUInt32Bits(x);
            ushort sign = (ushort)((fb >> 31) << 15);
            if (float.IsNaN(x)) return (ushort)(sign | InfBits | 1); // any NaN; callers compare NaN-ness
            double a = Math.Abs((double)x);
            int lo = 0, hi = InfBits;   // largest pattern with Value <= a, by binary search
            if (a >= Value(hi)) return (ushort)(sign | InfBits);
            while (lo < hi)
            {
                int mid = (lo + hi + 1) / 2;
                if (Value(mid) <= a) lo = mid; else hi = mid - 1;
            }
            int p = lo;
            if (Value(p) == a) return (ushort)(sign | p);
            double dLo = a - Value(p), dHi = Value(p + 1) - a;
            int pick = dLo < dHi ? p : dHi < dLo ? p + 1 : (p % 2 == 0 ? p : p + 1);
            return (ushort)(sign | pick);
        }

        public bool IsNaN(ushort b) => (b & 0x7FFF) > InfBits;

        public float Decode(ushort b)
        {
            if (IsNaN(b)) return float.NaN;
            int mag = b & 0x7FFF;
            double v = mag == InfBits ? double.PositiveInfinity : Value(mag);
            return (float)((b & 0x8000) != 0 ? -v : v);
        }
    }

    private static readonly Format Bf16 = new() { ExpBits = 8, MantBits = 7 };
    private static readonly Format F16 = new() { ExpBits = 5, MantBits = 10 };

    private static float[] TestValues(Format fmt)
    {
        var rng = new Random(12345);
        var v = new List<float>
        {
            0f, -0f, 1f, -1f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.MaxValue, float.MinValue,
            float.Epsilon, -float.Epsilon, 1e-45f, 1e-40f, 65504f, 65519.99f, 65520f, 65536f, 1e6f, 6.1035156e-05f,
            5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f, 8.940697e-08f, 3.3895314e38f, 3.3961775e38f, 3.396178e38f,
            BitConverter.UInt32BitsToSingle(0x7FC0_0001), BitConverter.UInt32BitsToSingle(0xFF80_0001),
        };
        for (int i = 0; i < 20000; i++) v.Add(BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32)));
        for (int i = 0; i < 20000; i++) v.Add((float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-30, 20))));
        // Exact ties and near-ties between adjacent patterns (even and odd lower neighbours).
        for (int i = 0; i < 20000; i++)
        {
            int p = rng.Next(0, fmt.InfBits);
            double mid = (fmt.Value(p) + fmt.Value(p + 1)) / 2;
            float f = (float)mid;
            float s = rng.Next(2) == 0 ? 1 : -1;
            v.Add(s * f);
            v.Add(s * MathF.BitIncrement(f));
            v.Add(s * MathF.BitDecrement(f));
        }
        return v.ToArray();
    }

    [Theory]
    [InlineData(DType.BF16)]
    [InlineData(DType.F16)]
    public void WriterRounding_MatchesReference_AndReaderDecodes(DType t)
    {
        var fmt = t == DType.BF16 ? Bf16 : F16;
        var values = TestValues(fmt);
        using var dir = new TempDir();
        using (var w = new SafetensorsWriter(dir.Path, [new TensorSpec("x", t, [values.Length])]))
        {
            w.WriteFloat32("x", values);
            w.Commit();
        }
        using var src = ModelSource.Open(dir.Path);
        var bits = MemoryMarshal.Cast<byte, ushort>(src.GetBytes("x")).ToArray();
        var back = src.ReadFloat32("x");
        int bad = 0;
        string first = "";
        for (int i = 0; i < values.Length; i++)
        {
            ushort want = fmt.Round(values[i]);
            bool ok = fmt.IsNaN(want) ? fmt.IsNaN(bits[i]) && float.IsNaN(back[i]) : bits[i] == want && back[i].Equals(fmt.Decode(want));
            if (!ok && bad++ == 0)
                first = $"value {values[i]:R} (0x{BitConverter.SingleToUInt32Bits(values[i]):X8}): got 0x{bits[i]:X4}, want 0x{want:X4}";
        }
        Assert.True(bad == 0, $"{bad} mismatches; first: {first}");
    }

    [Fact]
    public void Reference_SanityChecks()
    {
        Assert.Equal(0x3F80, Bf16.Round(1f));
        Assert.Equal(0x3F80, Bf16.Round(BitConverter.UInt32BitsToSingle(0x3F80_8000))); // tie -> even (down)
        Assert.Equal(0x3F82, Bf16.Round(BitConverter.UInt32BitsToSingle(0x3F81_8000))); // tie -> even (up)
        Assert.Equal(0x7F80, Bf16.Round(float.MaxValue));                               // overflow -> inf
        Assert.Equal(0x3C00, F16.Round(1f));
        Assert.Equal(0x7BFF, F16.Round(65519f));
        Assert.Equal(0x7C00, F16.Round(65520f));
        Assert.Equal(0x0000, F16.Round(2.9802322e-08f)); // exactly half the smallest subnormal -> 0 (even)
        Assert.Equal(0x0001, F16.Round(2.9802326e-08f));
    }
}
