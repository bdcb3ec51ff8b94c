namespace TaskMerge.Engine.Tensors;

/// <summary>
/// The one op set every merge method and model is written against. Implementations: CPU
/// (SIMD, multi-threaded) and CUDA. Float32 values; reductions accumulate in float64.
/// All matrices are row-major 2-D tensors.
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>Human-readable device name, e.g. "cpu (2 threads)".</summary>
    string Name { get; }

    /// <summary>A tensor with unspecified contents.</summary>
    Tensor Empty(params int[] shape);

    /// <summary>A zero-filled tensor.</summary>
    Tensor Zeros(params int[] shape);

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

    /// <summary>
    /// Zeroes every element but the <paramref name="k"/> of largest magnitude. Among equal
    /// magnitudes at the threshold the lower flat indices are kept, so exactly k survive.
    /// Found by a radix threshold select, not a sort.
    /// </summary>
    void KeepTopKMagnitude(Tensor x, long k);

    /// <summary>
    /// Keeps each element with probability <paramref name="keepProbability"/> and zeroes the rest.
    /// Element i's draw is <see cref="CounterRng.Uniform"/>(seed, stream, i) &lt; p, so the result is
    /// independent of device, thread count and chunking.
    /// </summary>
    void BernoulliKeep(Tensor x, float keepProbability, ulong seed, ulong stream);

    /// <summary>t[i] ← N(0,1) draw <see cref="CounterRng.Normal"/>(seed, stream, i).</summary>
    void FillNormal(Tensor t, ulong seed, ulong stream);

    /// <summary>
    /// TIES sign election and disjoint merge over K weighted task vectors (mergekit "sum" consensus):
    /// majority = +1 where Σₖ weightedₖ ≥ 0 else −1; maskₖ = sign(weightedₖ) == majority;
    /// mixed = Σₖ weightedₖ·maskₖ; divisor = Σₖ weightsₖ·maskₖ with 0 replaced by 1.
    /// </summary>
    void SignConsensus(IReadOnlyList<Tensor> weighted, ReadOnlySpan<float> weights, Tensor mixed, Tensor divisor);

    /// <summary>One fused torch-order Adam/AdamW step (see <see cref="Optim.AdamStep"/>); <paramref name="step"/> is 1-based.</summary>
    void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, int step, Optim.AdamSettings settings);

    /// <summary>dst ← a / b elementwise.</summary>
    void Div(Tensor a, Tensor b, Tensor dst);

    /// <summary>C ← alpha·op(A)·op(B) + beta·C.</summary>
    void Gemm(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f);

    /// <summary>
    /// C ← alpha·op(A)·op(A)ᵀ + beta·C with op(A) = Aᵀ when <paramref name="transA"/> (so C = AᵀA).
    /// The full symmetric matrix is written.
    /// </summary>
    void Syrk(Tensor a, bool transA, Tensor c, float alpha = 1f, float beta = 0f);

    /// <summary>y ← alpha·op(A)·x + beta·y for 1-D x, y.</summary>
    void Gemv(Tensor a, bool transA, Tensor x, Tensor y, float alpha = 1f, float beta = 0f);

    /// <summary>
    /// B ← B·(A + shift·I)⁻¹ for a symmetric positive-definite A [n,n] and B [m,n]: every row of B is
    /// solved against the same matrix. (Row-major B [m,n] is column-major Bᵀ [n,m], so this is exactly
    /// LAPACK/cuSOLVER potrs on the right-hand sides Bᵀ.) A + shift·I is factorised by Cholesky (potrf)
    /// and the solves use the factor (potrs), both in float64; only the lower triangle of row-major A is
    /// read and A is left unchanged. Returns false, leaving B unchanged, when A + shift·I is not
    /// positive definite.
    /// </summary>
    bool CholeskySolve(Tensor a, double shift, Tensor b);
}
