using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void SignAgreeAccumulate(Tensor x, Tensor total, float weight, Tensor numerator, Tensor denominator)
    {
        OpShapes.SameLength(x, total);
        OpShapes.SameLength(x, numerator);
        OpShapes.SameLength(x, denominator);
        float[] v = Data(x), t = Data(total), n = Data(numerator), d = Data(denominator);
        ForChunks(x.Length, (o, c) =>
        {
            for (int i = o; i < o + c; i++)
            {
                if (!ConsensusKernels.AgreesWithMajority(v[i], t[i])) continue;
                n[i] += v[i] * weight;
                d[i] += weight;
            }
        });
    }

    /// <inheritdoc />
    public void DivClampedBelow(Tensor numerator, Tensor denominator, float floor, Tensor dst)
    {
        OpShapes.SameLength(numerator, denominator);
        OpShapes.SameLength(numerator, dst);
        float[] n = Data(numerator), d = Data(denominator), r = Data(dst);
        ForChunks(numerator.Length, (o, c) =>
        {
            for (int i = o; i < o + c; i++) r[i] = ConsensusKernels.DivClampedBelowValue(n[i], d[i], floor);
        });
    }
}
