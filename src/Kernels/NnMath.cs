namespace TaskMerge.Kernels;

/// <summary>
/// Scalar functions of the NN ops, shared by the ILGPU kernels and their CPU twins so both round
/// the same way. Written without arrays or calls other than <see cref="Math.Exp"/> so ILGPU can
/// compile them for any accelerator.
/// </summary>
public static class NnMath
{
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
        double ysq = Math.Truncate(y * 16.0) / 16.0;
        double del = (y - ysq) * (y + ysq);
        double erfc = Math.Exp(-ysq * ysq) * Math.Exp(-del) * r;
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
        float s = 1f / (1f + MathF.Exp(-t));
        return x * s;
    }

    /// <summary>Exact GELU derivative Φ(x) + x·φ(x), in double and rounded once.</summary>
    public static float GeluGrad(float x)
    {
        double d = x;
        double cdf = 0.5 * (1.0 + Erf(d * OneOverSqrt2));
        double pdf = Math.Exp(-0.5 * d * d) * 0.3989422804014327; // 1/√(2π)
        return (float)(cdf + d * pdf);
    }

    /// <summary>QuickGELU derivative σ(1.702x)·(1 + 1.702x·(1 − σ(1.702x))), in double and rounded once.</summary>
    public static float QuickGeluGrad(float x)
    {
        double t = 1.702 * x, s = 1.0 / (1.0 + Math.Exp(-t));
        return (float)(s * (1.0 + t * (1.0 - s)));
    }

    /// <summary>tanh in double precision, rounded once: a two-term series below 1e-4, else (1 − e^(−2|x|))/(1 + e^(−2|x|)).</summary>
    public static float Tanh(float x)
    {
        double d = x, a = Math.Abs(d);
        if (a < 1e-4) return (float)(d - d * d * d / 3.0);
        if (a > 20.0) return x > 0 ? 1f : -1f;
        double e = Math.Exp(-2.0 * a);
        double t = (1.0 - e) / (1.0 + e);
        return (float)(d < 0 ? -t : t);
    }
}
