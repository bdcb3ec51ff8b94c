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

    /// <summary>
    /// A tensor holding <paramref name="values"/>: the CPU backend adopts the array without a copy
    /// (the caller must not touch it afterwards), device backends upload it.
    /// </summary>
    Tensor FromHost(float[] values, params int[] shape);

    /// <summary>
    /// Starts a tensor of <paramref name="shape"/> whose values <paramref name="fill"/> writes into host
    /// memory the backend provides, from a thread other than the one driving the backend (a loader; one
    /// such thread at a time, concurrently with ops): a device backend hands out pinned memory and
    /// copies it on a copy stream of its own, so the upload overlaps the kernels being run meanwhile; the
    /// CPU backend fills a pooled array it then adopts. The driving thread makes the tensor with
    /// <see cref="StagedTensor.Take"/>, which is ordered after the copy.
    /// </summary>
    StagedTensor Stage(int[] shape, HostFill fill);

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

    /// <summary>
    /// mergekit's NearSwap per element: w = clamp(t / max(|a − b|, 1e-6), 0, 1), dst = w·b + (1 − w)·a
    /// (<see cref="TaskMerge.Kernels.InterpolationKernels.NearSwapValue"/>); dst may be a or b.
    /// </summary>
    void NearSwap(Tensor a, Tensor b, float t, Tensor dst);

    /// <summary>
    /// Arcee Fusion's importance per element, rows of <paramref name="rowLength"/> (the last dimension):
    /// |tuned − base|·Σ_row p·log(p/q) with p, q the row softmaxes of tuned and base plus 1e-8 (float64 sums).
    /// </summary>
    void ArceeFusionImportance(Tensor tuned, Tensor baseValues, int rowLength, Tensor dst);

    /// <summary>counts[i] += 1 where |x[i]| &gt; threshold (RAM's contributor count, one expert per call; SCE's nonzero count).</summary>
    void CountMagnitudeAbove(Tensor x, float threshold, Tensor counts);

    /// <summary>
    /// One expert of a sign election against a given total (mergekit's "sum" consensus on unweighted task
    /// vectors): where x[i] is non-zero with the sign of the majority (+1 where total[i] ≥ 0, else −1),
    /// numerator[i] += weight·x[i] and denominator[i] += weight.
    /// </summary>
    void SignAgreeAccumulate(Tensor x, Tensor total, float weight, Tensor numerator, Tensor denominator);

    /// <summary>dst[i] ← numerator[i] / max(denominator[i], floor) (torch's clamp(min=floor) divisor).</summary>
    void DivClampedBelow(Tensor numerator, Tensor denominator, float floor, Tensor dst);

    /// <summary>
    /// RAM merge of one expert: dst[i] += τ[i]·uniqueScale where τ[i] is its element's only contributor
    /// (counts[i] = 1), τ[i]/counts[i] where it shares it, 0 where |τ[i]| ≤ epsilon
    /// (<see cref="TaskMerge.Kernels.RamKernels.ContributionValue"/>).
    /// </summary>
    void RamAccumulate(Tensor taskVector, float epsilon, Tensor counts, float uniqueScale, Tensor dst);

    /// <summary>RAM+ masks of one expert: unique[i] ← 1 where τ[i] contributes alone, shared[i] ← 1 where it contributes with others, else 0.</summary>
    void RamClassify(Tensor taskVector, float epsilon, Tensor counts, Tensor unique, Tensor shared);

    /// <summary>Σ a·b, accumulated in float64.</summary>
    double Dot(Tensor a, Tensor b);

    /// <summary>
    /// Dot products of every pair (xsᵢ, ysⱼ) over consecutive blocks of <paramref name="blockLength"/>
    /// elements, accumulated in float64, in one pass over the inputs:
    /// dst[(b·|xs| + i)·|ys| + j] = Σ_{e ∈ block b} xsᵢ[e]·ysⱼ[e]. With blockLength = the row length of
    /// a row-major matrix the blocks are its rows; with blockLength = the tensor length, one block.
    /// When <paramref name="xs"/> and <paramref name="ys"/> are the same list the result is a Gram
    /// matrix per block (only one triangle needs computing).
    /// </summary>
    void BlockDot(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> ys, int blockLength, Span<double> dst);

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

    /// <summary>
    /// DELLA's MAGPRUNE keep. x is read as [outer, <paramref name="line"/>, <paramref name="inner"/>] and
    /// ranked along the middle dimension: element i of a line gets its 0-based ascending magnitude rank r
    /// in the line (equal magnitudes: the higher flat index ranks lower) and is kept when
    /// <see cref="CounterRng.Uniform"/>(seed, stream, i) &lt; pLow + (pHigh − pLow)·r/(line − 1)
    /// (pLow for a line of one), else zeroed. Independent of device, thread count and chunking.
    /// </summary>
    void RankedBernoulliKeep(Tensor x, int line, int inner, double pLow, double pHigh, ulong seed, ulong stream);

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
    /// Copies a rows×cols block: dst[dstRow + i, dstCol + j] ← src[srcRow + i, srcCol + j]. Both tensors
    /// are 2-D, or 1-D read as a single row (row offsets 0, rows 1). The block must lie inside both;
    /// src and dst must be different tensors.
    /// </summary>
    void CopyBlock(Tensor src, int srcRow, int srcCol, Tensor dst, int dstRow, int dstCol, int rows, int cols);

    /// <summary>dst[i, j] ← a[i, j]·scales[j] for a 2-D a (a·diag(scales)); dst may be a.</summary>
    void ScaleColumns(Tensor a, Tensor scales, Tensor dst);

    /// <summary>
    /// Thin singular value decomposition a = u·diag(s)·vt of the m×n matrix <paramref name="a"/> (not
    /// modified): <paramref name="u"/> m×k with orthonormal columns, <paramref name="s"/> of length k
    /// holding the singular values in descending order, <paramref name="vt"/> k×n with orthonormal rows,
    /// k = min(m, n). The sign of each singular-vector pair, and the basis within a repeated singular
    /// value, are unspecified. Float32 in and out; implementations factorise in float64 where they can
    /// (CPU: LAPACK <c>dgesdd</c> or a managed float64 SVD). A non-finite input gives NaN outputs.
    /// </summary>
    void Svd(Tensor a, Tensor u, Tensor s, Tensor vt);

    /// <summary>
    /// Eigen-decomposition a = V·diag(w)·Vᵀ of the symmetric n×n matrix <paramref name="a"/> (not modified;
    /// only symmetric input is meaningful): <paramref name="eigenvalues"/> (length n) ascending, as LAPACK
    /// <c>syevd</c> returns them; <paramref name="eigenvectors"/> n×n orthogonal, its column j the unit
    /// eigenvector of eigenvalues[j] (sign unspecified). Float32 in and out, float64 inside on the CPU.
    /// A non-finite input gives NaN outputs.
    /// </summary>
    void SymmetricEigen(Tensor a, Tensor eigenvalues, Tensor eigenvectors);
    // ---- Transformer forward-pass ops (CLIP ViT, RoBERTa). "Rows" are the last dimension. ----

    /// <summary>
    /// dst ← LayerNorm of every row of <paramref name="x"/> (rows of <c>gamma.Length</c> values), as torch
    /// nn.LayerNorm: (x − μ)/√(σ² + eps)·γ + β with the biased variance; μ and σ² accumulate in float64.
    /// dst may be x.
    /// </summary>
    void LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor dst);

    /// <summary>
    /// dst[r, :] ← x[r, :] + rows[r mod p, :], where <paramref name="rows"/> is [n] (p = 1: a bias) or
    /// [p, n] (e.g. position embeddings, p = tokens per sequence) and x holds rows of n values. dst may be x.
    /// </summary>
    void AddRowVector(Tensor x, Tensor rows, Tensor dst);

    /// <summary>dst ← exact GELU, x·½·(1 + erf(x/√2)), with a float64 erf. dst may be x.</summary>
    void Gelu(Tensor x, Tensor dst);

    /// <summary>dst ← QuickGELU, x·σ(1.702·x). dst may be x.</summary>
    void QuickGelu(Tensor x, Tensor dst);

    /// <summary>dst ← tanh(x). dst may be x.</summary>
    void Tanh(Tensor x, Tensor dst);

    /// <summary>
    /// Softmax over the last dimension of <paramref name="x"/> of v = scale·x + bias, where row r adds
    /// bias row r / <paramref name="rowsPerBiasRow"/> (bias [R/rowsPerBiasRow, n], e.g. an additive
    /// key-padding mask [B, T] for scores [B·H, T, T] with rowsPerBiasRow = H·T); no bias when null.
    /// The row max is subtracted first; the normaliser accumulates in float64. dst may be x.
    /// </summary>
    void SoftmaxRows(Tensor x, Tensor dst, float scale = 1f, Tensor? bias = null, int rowsPerBiasRow = 1);

    /// <summary>
    /// Strided-batched GEMM over rank-3 tensors: C[b] ← alpha·op(A[b])·op(B[b]) + beta·C[b] for every b of
    /// the leading dimension (A [batch, ·, ·], B [batch, ·, ·], C [batch, m, n], packed row-major).
    /// </summary>
    void GemmStridedBatched(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f);

    /// <summary>
    /// Attention head split: x holds B·T rows of H·D values (token-major); dst is [B·H, T, D] (rank 3),
    /// dst[(b·H + h), t, d] = x[b·T + t, h·D + d]. <paramref name="heads"/> = H; B, T and D come from dst.
    /// </summary>
    void SplitHeads(Tensor x, Tensor dst, int heads);

    /// <summary>The inverse of <see cref="SplitHeads"/>: x is [B·H, T, D] (rank 3), dst holds B·T rows of H·D values.</summary>
    void MergeHeads(Tensor x, Tensor dst, int heads);

    /// <summary>
    /// Row gather (embedding lookup, CLS pooling): dst[i, :] ← table[rows[i], :] for a 2-D table;
    /// dst holds rows.Length rows of table.Cols values. Out-of-range indices throw.
    /// </summary>
    void GatherRows(Tensor table, ReadOnlySpan<int> rows, Tensor dst);

    /// <summary>
    /// The adjoint of <see cref="GatherRows"/> (CLS-pooling backward, adding one row into a table):
    /// dst[rows[i], :] += src[i, :] for a 2-D dst; src holds rows.Length rows of dst.Cols values
    /// (a 1-D src is one row). Indices must be distinct and in range, else it throws.
    /// </summary>
    void ScatterAddRows(Tensor src, ReadOnlySpan<int> rows, Tensor dst);

    /// <summary>
    /// Patch extraction for a stride-P convolution with a P×P kernel (ViT patch embedding as a GEMM):
    /// images [B, C, H, W] → dst [B·(lead + gh·gw), C·P·P] with gh = ⌊H/P⌋, gw = ⌊W/P⌋; each image's
    /// rows are <paramref name="leadingRows"/> zero rows (the class-token slot) and then its patches in
    /// row-major grid order, each flattened (channel, ky, kx) like the conv weight [W, C, P, P].
    /// </summary>
    void Patchify(Tensor images, int patch, int leadingRows, Tensor dst);

    // ---- Backward ops (training the CLIP vision tower). A linear layer's backward is Gemm (dX = dY·W,
    // dW = dYᵀ·X) plus Gemv(dY, transA: true, ones) for the bias. ----

    /// <summary>
    /// LayerNorm backward (torch nn.LayerNorm, biased variance) from the forward's input x, with the
    /// row statistics recomputed in float64: dx += rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂⊙x̂)) with
    /// dx̂ = dy⊙γ; dγ += Σ_rows dy⊙x̂; dβ += Σ_rows dy. All three outputs ACCUMULATE.
    /// </summary>
    void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, float eps, Tensor dx, Tensor dgamma, Tensor dbeta);

    /// <summary>
    /// The adjoint of <see cref="AddRowVector"/> with respect to its rows (bias, position-embedding
    /// gradients): dRows[q, :] += Σ_{r mod p = q} dy[r, :], where dy holds rows of n values and
    /// <paramref name="dRows"/> is [n] (p = 1) or [p, n]. The sums run over r ascending in float64;
    /// the result ACCUMULATES.
    /// </summary>
    void AddRowVectorBackward(Tensor dy, Tensor dRows);

    /// <summary>dx ← dy ⊙ GELU′(x) for the exact GELU (x the forward's input). dx may be dy.</summary>
    void GeluBackward(Tensor x, Tensor dy, Tensor dx);

    /// <summary>dx ← dy ⊙ QuickGELU′(x) = dy⊙σ(1.702x)·(1 + 1.702x·(1 − σ(1.702x))). dx may be dy.</summary>
    void QuickGeluBackward(Tensor x, Tensor dy, Tensor dx);

    /// <summary>
    /// Softmax backward over the last dimension for y = softmax(scale·x (+ a constant bias)):
    /// dx ← scale·y⊙(dy − Σ_row y⊙dy), the dot in float64. dx may be dy.
    /// </summary>
    void SoftmaxRowsBackward(Tensor y, Tensor dy, Tensor dx, float scale = 1f);

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
