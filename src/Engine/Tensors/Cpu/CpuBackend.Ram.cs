using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void CountMagnitudeAbove(Tensor x, float threshold, Tensor counts)
    {
        OpShapes.SameLength(x, counts);
        float[] v = Data(x), c = Data(counts);
        ForChunks(x.Length, (o, n) =>
        {
            for (int i = o; i < o + n; i++) if (Math.Abs(v[i]) > threshold) c[i] += 1;
        });
    }

    /// <inheritdoc />
    public void RamAccumulate(Tensor taskVector, float epsilon, Tensor counts, float uniqueScale, Tensor dst)
    {
        OpShapes.SameLength(taskVector, counts);
        OpShapes.SameLength(taskVector, dst);
        float[] x = Data(taskVector), c = Data(counts), d = Data(dst);
        ForChunks(taskVector.Length, (o, n) =>
        {
            for (int i = o; i < o + n; i++) d[i] += RamKernels.ContributionValue(x[i], epsilon, c[i], uniqueScale);
        });
    }

    /// <inheritdoc />
    public void RamClassify(Tensor taskVector, float epsilon, Tensor counts, Tensor unique, Tensor shared)
    {
        OpShapes.SameLength(taskVector, counts);
        OpShapes.SameLength(taskVector, unique);
        OpShapes.SameLength(taskVector, shared);
        float[] x = Data(taskVector), c = Data(counts), u = Data(unique), s = Data(shared);
        ForChunks(taskVector.Length, (o, n) =>
        {
            for (int i = o; i < o + n; i++)
            {
                bool contributes = Math.Abs(x[i]) > epsilon;
                u[i] = contributes && c[i] == 1 ? 1 : 0;
                s[i] = contributes && c[i] > 1 ? 1 : 0;
            }
        });
    }
}
