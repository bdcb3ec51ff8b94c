namespace TaskMerge.Engine.Tensors;

/// <summary>
/// The core tensor ops every backend has and every other op set builds on: allocation, host
/// transfers, elementwise arithmetic, float64-accumulated reductions and counter-based random fill.
/// Float32 values; all tensors are dense and row-major.
/// </summary>
public interface ITensorOps
{
    /// <summary>Human-readable device name, e.g. "cpu (2 threads)".</summary>
    string Name { get; }

    /// <summary>A tensor with unspecified contents.</summary>
    Tensor Empty(params int[] shape);

    /// <summary>A zero-filled tensor.</summary>
    Tensor Zeros(params int[] shape);

    /// <summary>
    /// A tensor holding <paramref name="values"/>: the CPU backend adopts the array without a copy
    /// (the caller must not touch it afterwards), device backends upload it.
    /// </summary>
    Tensor FromHost(float[] values, params int[] shape);

    /// <summary>
    /// The values of <paramref name="t"/> as a host array of exactly <see cref="Tensor.Length"/>
    /// elements, disposing the tensor: the CPU backend hands over its array, device backends download.
    /// </summary>
    float[] DetachToHost(Tensor t);

    /// <summary>Copies host values into <paramref name="dst"/>.</summary>
    void Upload(ReadOnlySpan<float> src, Tensor dst);

    /// <summary>Copies the values of <paramref name="src"/> to host memory.</summary>
    void Download(Tensor src, Span<float> dst);

    /// <summary>Returns a tensor's storage; called by <see cref="Tensor.Dispose"/>.</summary>
    void Release(Tensor t);

    /// <summary>dst ← src.</summary>
    void Copy(Tensor src, Tensor dst);

    /// <summary>t ← value everywhere.</summary>
    void Fill(Tensor t, float value);

    /// <summary>dst ← a + b.</summary>
    void Add(Tensor a, Tensor b, Tensor dst);

    /// <summary>dst ← a − b.</summary>
    void Sub(Tensor a, Tensor b, Tensor dst);

    /// <summary>dst ← a ⊙ b.</summary>
    void Mul(Tensor a, Tensor b, Tensor dst);

    /// <summary>dst ← a / b elementwise.</summary>
    void Div(Tensor a, Tensor b, Tensor dst);

    /// <summary>dst ← s·a.</summary>
    void Scale(Tensor a, float s, Tensor dst);

    /// <summary>y ← y + alpha·x.</summary>
    void Axpy(float alpha, Tensor x, Tensor y);

    /// <summary>Σ x, accumulated in float64.</summary>
    double Sum(Tensor x);

    /// <summary>Σ |x|, accumulated in float64.</summary>
    double SumAbs(Tensor x);

    /// <summary>Σ x², accumulated in float64.</summary>
    double SumSquares(Tensor x);

    /// <summary>Σ a·b, accumulated in float64.</summary>
    double Dot(Tensor a, Tensor b);

    /// <summary>max |x| (0 for an empty tensor).</summary>
    float MaxAbs(Tensor x);

    /// <summary>t[i] ← N(0,1) draw <see cref="CounterRng.Normal"/>(seed, stream, i).</summary>
    void FillNormal(Tensor t, ulong seed, ulong stream);
}
