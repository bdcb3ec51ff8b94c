using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors;

/// <summary>
/// Philox4x32-10 counter-based random numbers: the value for (seed, stream, index) is a pure
/// function, so every backend and thread layout draws the same numbers. The generator itself is
/// <see cref="RandomKernels.PhiloxLow"/>, shared with the device kernels.
/// </summary>
public static class CounterRng
{
    /// <summary>Uniform float in [0, 1) with 24 random bits.</summary>
    public static float Uniform(ulong seed, ulong stream, ulong index) => RandomKernels.Uniform(seed, stream, index);

    /// <summary>Standard normal draw (Box–Muller on two words of the same counter).</summary>
    public static float Normal(ulong seed, ulong stream, ulong index)
    {
        ulong words = RandomKernels.PhiloxLow(seed, stream, index);
        uint a = (uint)words, b = (uint)(words >> 32);
        double u1 = ((a >> 8) + 1.0) / 16777217.0, u2 = (b >> 8) / 16777216.0;
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
    }

    /// <summary>A stable 64-bit stream id for a name and an index (FNV-1a over UTF-16 code units).</summary>
    public static ulong StreamId(string name, int index)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in name) { h ^= ch; h *= 1099511628211UL; }
        h ^= (ulong)(uint)index; h *= 1099511628211UL;
        return h;
    }
}
