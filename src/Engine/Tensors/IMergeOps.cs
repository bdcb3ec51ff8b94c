namespace TaskMerge.Engine.Tensors;

/// <summary>
/// Fused ops of particular merge methods (TIES/DARE/DELLA selection and sign election, RAM, SCE,
/// NearSwap, Arcee Fusion, the block dot products of AWD, slerp and WUDI): each replaces a host loop
/// or several passes over the experts with one pass on the device.
/// </summary>
public interface IMergeOps : ITensorOps
{
    /// <summary>
    /// Dot products of every pair (xsᵢ, ysⱼ) over consecutive blocks of <paramref name="blockLength"/>
    /// elements, accumulated in float64, in one pass over the inputs:
    /// dst[(b·|xs| + i)·|ys| + j] = Σ_{e ∈ block b} xsᵢ[e]·ysⱼ[e]. With blockLength = the row length of
    /// a row-major matrix the blocks are its rows; with blockLength = the tensor length, one block.
    /// When <paramref name="xs"/> and <paramref name="ys"/> are the same list the result is a Gram
    /// matrix per block (only one triangle needs computing).
    /// </summary>
    void BlockDot(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> ys, int blockLength, Span<double> dst);

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

    /// <summary>
    /// TIES sign election and disjoint merge over K weighted task vectors (mergekit "sum" consensus):
    /// majority = +1 where Σₖ weightedₖ ≥ 0 else −1; maskₖ = sign(weightedₖ) == majority;
    /// mixed = Σₖ weightedₖ·maskₖ; divisor = Σₖ weightsₖ·maskₖ with 0 replaced by 1.
    /// </summary>
    void SignConsensus(IReadOnlyList<Tensor> weighted, ReadOnlySpan<float> weights, Tensor mixed, Tensor divisor);

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
}
