using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// Philox4x32-10 draws keyed by (seed, stream, element index), identical to the engine's
/// CounterRng. Uniform draws are bit-identical to it. Normal draws use Box–Muller with a log and
/// a cosine written here from + − × ÷ only (device math libraries are not assumed), accurate to a
/// few float64 ulps, so they agree with the CPU's Math.Log/Math.Cos to well within 1e-6.
/// </summary>
public static class RandomKernels
{
    /// <summary>Philox4x32 round multipliers (M0, M1) and Weyl key increments (W0, W1), shared with the CPU's SIMD Philox.</summary>
    public const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;
    private const double Ln2 = 0.69314718055994530942, Sqrt2 = 1.41421356237309504880;
    private const double QuarterTurnAngle = 2.0 * 3.14159265358979323846 / 16777216.0;

    /// <summary>Zeroes x[i] unless Uniform(seed, stream, i) &lt; keepProbability.</summary>
    public static void BernoulliKeep(Index1D i, ArrayView<float> x, float keepProbability, ulong seed, ulong stream)
    {
        if (!(Uniform(seed, stream, (ulong)(int)i) < keepProbability)) x[i] = 0f;
    }

    /// <summary>
    /// DELLA's rank-scaled keep (see <c>IMergeOps.RankedBernoulliKeep</c>): dst[i] ← src[i] when
    /// Uniform(seed, stream, i) &lt; <see cref="RankKeepProbability"/> of src[i]'s magnitude rank in its
    /// line, else 0. src and dst must not overlap; each thread scans its line, O(line) work per element.
    /// </summary>
    public static void RankedBernoulliKeep(Index1D i, ArrayView<float> src, ArrayView<float> dst, RankKeepShape shape, ulong seed, ulong stream)
    {
        long index = i;
        long span = (long)shape.Line * shape.Inner;
        long outer = index / span, rem = index - outer * span;
        int pos = (int)(rem / shape.Inner);
        long first = outer * span + (rem - (long)pos * shape.Inner);
        float me = Math.Abs(src[index]);
        int rank = 0;
        for (int j = 0; j < shape.Line; j++)
        {
            float other = Math.Abs(src[first + (long)j * shape.Inner]);
            if (other < me || (other == me && j > pos)) rank++;
        }
        double p = RankKeepProbability(rank, shape.Line, shape.PLow, shape.PHigh);
        dst[index] = Uniform(seed, stream, (ulong)index) < p ? src[index] : 0f;
    }

    /// <summary>
    /// Keep probability of the element of ascending magnitude rank <paramref name="rank"/> (0-based) in a
    /// line of <paramref name="line"/>: pLow + (pHigh − pLow)·rank/(line − 1), pLow when line is 1.
    /// </summary>
    public static double RankKeepProbability(int rank, int line, double pLow, double pHigh) =>
        line <= 1 ? pLow : pLow + (pHigh - pLow) * rank / (line - 1);

    /// <summary>t[i] ← Normal(seed, stream, i).</summary>
    public static void FillNormal(Index1D i, ArrayView<float> t, ulong seed, ulong stream) =>
        t[i] = Normal(seed, stream, (ulong)(int)i);

    /// <summary>The first two Philox4x32-10 output words for counter (index, stream) under key seed, as word0 | word1 &lt;&lt; 32.</summary>
    public static ulong PhiloxLow(ulong seed, ulong stream, ulong index)
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
        return c0 | ((ulong)c1 << 32);
    }

    /// <summary>Uniform float in [0, 1) from the top 24 bits of word 0.</summary>
    public static float Uniform(ulong seed, ulong stream, ulong index) =>
        ((uint)PhiloxLow(seed, stream, index) >> 8) * (1f / 16777216f);

    /// <summary>Standard normal: sqrt(−2 ln u1)·cos(2π u2) with u1 from word 0 (in (0, 1]) and u2 from word 1.</summary>
    public static float Normal(ulong seed, ulong stream, ulong index)
    {
        ulong words = PhiloxLow(seed, stream, index);
        uint a = (uint)words >> 8, b = (uint)(words >> 32) >> 8;
        double u1 = (a + 1.0) / 16777217.0;
        return (float)(Math.Sqrt(-2.0 * Log(u1)) * CosTwoPiTurns(b));
    }

    /// <summary>Natural log of a positive normal float64: x = m·2ᵉ with m in [√½, √2), ln m = 2 atanh((m−1)/(m+1)).</summary>
    public static double Log(double x)
    {
        ulong bits = Interop.FloatAsInt(x);
        int e = (int)((bits >> 52) & 0x7FF) - 1023;
        double m = Interop.IntAsFloat((bits & 0x000F_FFFF_FFFF_FFFFUL) | 0x3FF0_0000_0000_0000UL);
        if (m > Sqrt2)
        {
            m *= 0.5;
            e++;
        }
        double s = (m - 1.0) / (m + 1.0), s2 = s * s;
        double series = 1.0 / 23;
        series = series * s2 + 1.0 / 21;
        series = series * s2 + 1.0 / 19;
        series = series * s2 + 1.0 / 17;
        series = series * s2 + 1.0 / 15;
        series = series * s2 + 1.0 / 13;
        series = series * s2 + 1.0 / 11;
        series = series * s2 + 1.0 / 9;
        series = series * s2 + 1.0 / 7;
        series = series * s2 + 1.0 / 5;
        series = series * s2 + 1.0 / 3;
        series = series * s2 + 1.0;
        return e * Ln2 + 2.0 * s * series;
    }

    /// <summary>
    /// cos(2π·n/2²⁴) for 0 ≤ n &lt; 2²⁴. The quadrant is split off exactly in integers, leaving an
    /// angle in [−π/4, π/4) for short Taylor series.
    /// </summary>
    public static double CosTwoPiTurns(uint n)
    {
        int quadrant = (int)((n + (1u << 21)) >> 22);
        double angle = ((int)n - (quadrant << 22)) * QuarterTurnAngle;
        double a2 = angle * angle;
        switch (quadrant & 3)
        {
            case 0: return CosSeries(a2);
            case 1: return -angle * SinSeries(a2);
            case 2: return -CosSeries(a2);
            default: return angle * SinSeries(a2);
        }
    }

    private static double CosSeries(double a2)
    {
        double c = -1.0 / 6402373705728000;
        c = c * a2 + 1.0 / 20922789888000;
        c = c * a2 - 1.0 / 87178291200;
        c = c * a2 + 1.0 / 479001600;
        c = c * a2 - 1.0 / 3628800;
        c = c * a2 + 1.0 / 40320;
        c = c * a2 - 1.0 / 720;
        c = c * a2 + 1.0 / 24;
        c = c * a2 - 0.5;
        return c * a2 + 1.0;
    }

    private static double SinSeries(double a2)
    {
        double s = -1.0 / 121645100408832000;
        s = s * a2 + 1.0 / 355687428096000;
        s = s * a2 - 1.0 / 1307674368000;
        s = s * a2 + 1.0 / 6227020800;
        s = s * a2 - 1.0 / 39916800;
        s = s * a2 + 1.0 / 362880;
        s = s * a2 - 1.0 / 5040;
        s = s * a2 + 1.0 / 120;
        s = s * a2 - 1.0 / 6;
        return s * a2 + 1.0;
    }
}

/// <summary>Layout of a <see cref="RandomKernels.RankedBernoulliKeep"/> launch: the tensor as [outer, Line, Inner], ranked along Line.</summary>
public struct RankKeepShape
{
    /// <summary>Elements per ranked line.</summary>
    public int Line;
    /// <summary>Stride between consecutive elements of a line (the product of the trailing dimensions).</summary>
    public int Inner;
    /// <summary>Keep probability of the smallest magnitude of a line.</summary>
    public double PLow;
    /// <summary>Keep probability of the largest magnitude of a line.</summary>
    public double PHigh;
}
