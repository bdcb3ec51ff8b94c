using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// One-thread-per-element kernels. Each is a single IEEE operation per element (Axpy: a multiply
/// then an add), so results equal the CPU backend's bit for bit wherever the device does not
/// contract a multiply-add into an FMA.
/// </summary>
public static class ElementwiseKernels
{
    /// <summary>dst[i] ← a[i] + b[i].</summary>
    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst) => dst[i] = a[i] + b[i];

    /// <summary>dst[i] ← a[i] − b[i].</summary>
    public static void Sub(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst) => dst[i] = a[i] - b[i];

    /// <summary>dst[i] ← a[i] · b[i].</summary>
    public static void Mul(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst) => dst[i] = a[i] * b[i];

    /// <summary>dst[i] ← a[i] / b[i].</summary>
    public static void Div(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst) => dst[i] = a[i] / b[i];

    /// <summary>dst[i] ← a[i] · s.</summary>
    public static void Scale(Index1D i, ArrayView<float> a, float s, ArrayView<float> dst) => dst[i] = a[i] * s;

    /// <summary>y[i] ← x[i] · alpha + y[i].</summary>
    public static void Axpy(Index1D i, float alpha, ArrayView<float> x, ArrayView<float> y) => y[i] = x[i] * alpha + y[i];

    /// <summary>t[i] ← value.</summary>
    public static void Fill(Index1D i, ArrayView<float> t, float value) => t[i] = value;

    /// <summary>dst[i] ← src[i].</summary>
    public static void Copy(Index1D i, ArrayView<float> src, ArrayView<float> dst) => dst[i] = src[i];
}
