using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>
/// <see cref="RandomKernels.PhiloxLow"/>'s word 0 for 16 consecutive counters at once (AVX-512: two vectors of
/// 8 64-bit lanes, each holding a 32-bit Philox word, <c>vpmuludq</c> for the 32×32→64 products), the same
/// bits as the scalar generator.
/// </summary>
internal static class PhiloxSimd
{
    public static bool IsSupported => Avx512F.IsSupported;

    /// <summary>
    /// <see cref="RandomKernels.Uniform"/>(seed, stream, index + j) &lt; <paramref name="keepProbability"/> for
    /// j = 0..15, as an all-ones/all-zeros mask per lane.
    /// </summary>
    public static Vector512<float> KeepMask(ulong seed, ulong stream, ulong index, float keepProbability)
    {
        var step = Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
        var lo = Word0(seed, stream, Vector512.Create(index) + step);
        var hi = Word0(seed, stream, Vector512.Create(index + 8) + step);
        var words = Vector512.Narrow(lo, hi);
        var u = Vector512.ConvertToSingle((words >>> 8).AsInt32()) * (1f / 16777216f);
        return Vector512.LessThan(u, Vector512.Create(keepProbability));
    }

    private static Vector512<ulong> Word0(ulong seed, ulong stream, Vector512<ulong> index)
    {
        var low = Vector512.Create(0xFFFF_FFFFUL);
        var m0 = Vector512.Create((ulong)RandomKernels.M0).AsUInt32();
        var m1 = Vector512.Create((ulong)RandomKernels.M1).AsUInt32();
        Vector512<ulong> c0 = index & low, c1 = index >>> 32, c2 = Vector512.Create(stream & 0xFFFF_FFFF), c3 = Vector512.Create(stream >> 32);
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (int r = 0; r < 10; r++)
        {
            var p0 = Avx512F.Multiply(m0, c0.AsUInt32());
            var p1 = Avx512F.Multiply(m1, c2.AsUInt32());
            var n0 = (p1 >>> 32) ^ c1 ^ Vector512.Create((ulong)k0);
            var n2 = (p0 >>> 32) ^ c3 ^ Vector512.Create((ulong)k1);
            c1 = p1 & low;
            c3 = p0 & low;
            c0 = n0;
            c2 = n2;
            k0 += RandomKernels.W0;
            k1 += RandomKernels.W1;
        }
        return c0;
    }
}
