namespace TaskMerge.Engine.Tensors;

/// <summary>
/// Philox4x32-10 counter-based random numbers: the value for (seed, stream, index) is a pure
/// function, so every backend and thread layout draws the same numbers.
/// </summary>
public static class CounterRng
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>Four 32-bit random words for counter (index, stream) under key seed.</summary>
    public static (uint, uint, uint, uint) Philox(ulong seed, ulong stream, ulong index)
    {
        uint c0 = (uint)index, c1 = (uint)(index >> 32), c2 = (uint)stream, c3 = (uint)(stream >> 32);
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (int r = 0; r < 10; r++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0, n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            c1 = (uint)p1; c3 = (uint)p0; c0 = n0; c2 = n2;
            k0 += W0; k1 += W1;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>Uniform float in [0, 1) with 24 random bits.</summary>
    public static float Uniform(ulong seed, ulong stream, ulong index) =>
        (Philox(seed, stream, index).Item1 >> 8) * (1f / 16777216f);

    /// <summary>Standard normal draw (Box–Muller on two words of the same counter).</summary>
    public static float Normal(ulong seed, ulong stream, ulong index)
    {
        var (a, b, _, _) = Philox(seed, stream, index);
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
