namespace TaskMerge.Engine.Tensors;

/// <summary>
/// Transformer forward and backward ops (CLIP towers, RoBERTa) and the fused optimizer step that
/// trains them. "Rows" are the last dimension. A linear layer is <see cref="ILinearAlgebraOps.Gemm"/>
/// plus <see cref="AddRowVector"/>; its backward is Gemm (dX = dY·W, dW = dYᵀ·X) plus
/// <see cref="ILinearAlgebraOps.Gemv"/>(dY, transA: true, ones) for the bias.
/// </summary>
public interface INeuralNetOps : ILinearAlgebraOps
{
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

    /// <summary>One fused torch-order Adam/AdamW step (see <see cref="Optim.AdamStep"/>); <paramref name="step"/> is 1-based.</summary>
    void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, int step, Optim.AdamSettings settings);
}
