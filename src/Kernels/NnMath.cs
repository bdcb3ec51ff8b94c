using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// Scalar functions of the NN ops, shared by the ILGPU kernels and their CPU twins so both round
/// the same way. Written from + − × ÷, comparisons and bit casts only (<see cref="Exp"/> included), so
/// ILGPU compiles them for any accelerator without a device math library, and ILGPU's CPU accelerator,
/// which runs the .NET code of a kernel, executes exactly the arithmetic the GPU does (up to the
/// multiply-add contraction ptxas may apply). Measured error bounds: <c>bench/results/device-math-ulp.md</c>.
/// </summary>
public static class NnMath
{
    private const double Log2E = 1.4426950408889634074;
    private const double Ln2Hi = 6.93147180369123816490e-01; // ln 2 rounded to 21 significant bits: k·Ln2Hi is exact for |k| < 2¹¹
    private const double Ln2Lo = 1.90821492927058770002e-10; // ln 2 − Ln2Hi
    private const double OverflowAbove = 709.782712893384; // the double just above ln(double.MaxValue)
    private const double UnderflowBelow = -745.1332191019412; // below it e^x rounds to 0
    private const double TwoToMinus64 = 5.421010862427522170e-20;

    /// <summary>
    /// e^x in double precision: x = k·ln 2 + r with k the nearest integer to x/ln 2 and |r| ≤ ½ ln 2
    /// (ln 2 split in two parts so k·ln 2 loses nothing), e^r by its Taylor series to r¹³ in Horner form
    /// (truncation below 5·10⁻¹⁸ relative), then scaled by 2ᵏ built from its bit pattern (in two steps
    /// for subnormal results, so they are rounded once). NaN gives NaN, +∞ and x past overflow +∞,
    /// −∞ and x past underflow +0.
    /// </summary>
    public static double Exp(double x)
    {
        if (!(x < OverflowAbove)) return double.IsNaN(x) ? x : double.PositiveInfinity;
        if (x < UnderflowBelow) return 0.0;
        double t = x * Log2E;
        int k = (int)(t < 0 ? t - 0.5 : t + 0.5);
        double r = (x - k * Ln2Hi) - k * Ln2Lo;
        double p = 1.0 / 6227020800;
        p = p * r + 1.0 / 479001600;
        p = p * r + 1.0 / 39916800;
        p = p * r + 1.0 / 3628800;
        p = p * r + 1.0 / 362880;
        p = p * r + 1.0 / 40320;
        p = p * r + 1.0 / 5040;
        p = p * r + 1.0 / 720;
        p = p * r + 1.0 / 120;
        p = p * r + 1.0 / 24;
        p = p * r + 1.0 / 6;
        p = p * r + 0.5;
        p = p * r + 1.0;
        p = p * r + 1.0;
        if (k > 1023) return p * 2.0 * TwoTo(k - 1);
        if (k < -1022) return p * TwoTo(k + 64) * TwoToMinus64;
        return p * TwoTo(k);
    }

    /// <summary>e^x in single precision: <see cref="Exp"/> of the widened value, rounded once to float.</summary>
    public static float ExpF(float x) => (float)Exp(x);

    /// <summary>2ᵏ for −1022 ≤ k ≤ 1023, from its exponent bits.</summary>
    private static double TwoTo(int k) => Interop.IntAsFloat((ulong)(k + 1023) << 52);

    private const double OneOverSqrtPi = 5.6418958354775628695e-1;
    private const double OneOverSqrt2 = 0.70710678118654752440;

    /// <summary>
    /// The error function in double precision (relative error ~1e-16), after W. J. Cody,
    /// "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969) 631–638
    /// (netlib specfun CALERF): one rational in x² on |x| ≤ 0.46875, and erfc·exp(x²) rationals in
    /// x on (0.46875, 4] and in 1/x² beyond, with exp(−x²) split as exp(−r²)·exp(−(x−r)(x+r)),
    /// r = ⌊16x⌋/16, so the exponential loses no accuracy.
    /// </summary>
    public static double Erf(double x)
    {
        double y = Math.Abs(x);
        if (!(y > 0.46875))
        {
            if (double.IsNaN(x)) return x;
            double z = y > 1.11e-16 ? y * y : 0.0;
            double num = (((1.85777706184603153e-1 * z + 3.16112374387056560e00) * z + 1.13864154151050156e02) * z
                          + 3.77485237685302021e02) * z + 3.20937758913846947e03;
            double den = (((z + 2.36012909523441209e01) * z + 2.44024637934444173e02) * z
                          + 1.28261652607737228e03) * z + 2.84423683343917062e03;
            return x * num / den;
        }
        if (y >= 6.0) return x > 0 ? 1.0 : -1.0; // erfc(6) < 2.2e-17: 1 − erfc rounds to 1
        double r;
        if (y <= 4.0)
        {
            double num = (((((((2.15311535474403846e-8 * y + 5.64188496988670089e-1) * y + 8.88314979438837594e00) * y
                             + 6.61191906371416295e01) * y + 2.98635138197400131e02) * y + 8.81952221241769090e02) * y
                           + 1.71204761263407058e03) * y + 2.05107837782607147e03) * y + 1.23033935479799725e03;
            double den = (((((((y + 1.57449261107098347e01) * y + 1.17693950891312499e02) * y + 5.37181101862009858e02) * y
                             + 1.62138957456669019e03) * y + 3.29079923573345963e03) * y + 4.36261909014324716e03) * y
                           + 3.43936767414372164e03) * y + 1.23033935480374942e03;
            r = num / den;
        }
        else
        {
            double z = 1.0 / (y * y);
            double num = ((((1.63153871373020978e-2 * z + 3.05326634961232344e-1) * z + 3.60344899949804439e-1) * z
                           + 1.25781726111229246e-1) * z + 1.60837851487422766e-2) * z + 6.58749161529837803e-4;
            double den = ((((z + 2.56852019228982242e00) * z + 1.87295284992346047e00) * z + 5.27905102951428412e-1) * z
                          + 6.05183413124413191e-2) * z + 2.33520497626869185e-3;
            r = (OneOverSqrtPi - z * num / den) / y;
        }
        double ysq = (int)(y * 16.0) / 16.0; // y < 6, so the cast truncates exactly
        double del = (y - ysq) * (y + ysq);
        double erfc = Exp(-ysq * ysq) * Exp(-del) * r;
        double e = 0.5 - erfc + 0.5;
        return x < 0 ? -e : e;
    }

    /// <summary>
    /// Exact GELU, x·½·(1 + erf(x/√2)) (PyTorch's default <c>gelu</c>, HF <c>"gelu"</c>),
    /// evaluated in double and rounded once.
    /// </summary>
    public static float Gelu(float x)
    {
        double d = x;
        return (float)(d * 0.5 * (1.0 + Erf(d * OneOverSqrt2)));
    }

    /// <summary>
    /// QuickGELU, x·σ(1.702·x) (OpenAI CLIP, HF <c>"quick_gelu"</c>), in float32 with PyTorch's
    /// operation order: t = 1.702·x, σ = 1/(1+e^(−t)), x·σ.
    /// </summary>
    public static float QuickGelu(float x)
    {
        float t = 1.702f * x;
        float s = 1f / (1f + ExpF(-t));
        return x * s;
    }

    /// <summary>Exact GELU derivative Φ(x) + x·φ(x), in double and rounded once.</summary>
    public static float GeluGrad(float x)
    {
        double d = x;
        double cdf = 0.5 * (1.0 + Erf(d * OneOverSqrt2));
        double pdf = Exp(-0.5 * d * d) * 0.3989422804014327; // 1/√(2π)
        return (float)(cdf + d * pdf);
    }

    /// <summary>QuickGELU derivative σ(1.702x)·(1 + 1.702x·(1 − σ(1.702x))), in double and rounded once.</summary>
    public static float QuickGeluGrad(float x)
    {
        double t = 1.702 * x, s = 1.0 / (1.0 + Exp(-t));
        return (float)(s * (1.0 + t * (1.0 - s)));
    }

    /// <summary>tanh in double precision, rounded once: a two-term series below 1e-4, else (1 − e^(−2|x|))/(1 + e^(−2|x|)).</summary>
    public static float Tanh(float x)
    {
        double d = x, a = Math.Abs(d);
        if (a < 1e-4) return (float)(d - d * d * d / 3.0);
        if (a > 20.0) return x > 0 ? 1f : -1f;
        double e = Exp(-2.0 * a);
        double t = (1.0 - e) / (1.0 + e);
        return (float)(d < 0 ? -t : t);
    }
}
