using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void NearSwap(Tensor a, Tensor b, float t, Tensor dst)
    {
        OpShapes.SameLength(a, b);
        OpShapes.SameLength(a, dst);
        float[] x = Data(a), y = Data(b), d = Data(dst);
        ForChunks(a.Length, (o, n) =>
        {
            for (int i = o; i < o + n; i++) d[i] = InterpolationKernels.NearSwapValue(x[i], y[i], t);
        });
    }
}
