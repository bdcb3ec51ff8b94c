namespace TaskMerge.Engine.Tensors.Ilgpu;

public sealed partial class IlgpuBackend
{
    /// <inheritdoc />
    public void NearSwap(Tensor a, Tensor b, float t, Tensor dst)
    {
        OpShapes.SameLength(a, b);
        OpShapes.SameLength(a, dst);
        if (a.Length > 0) _kernels.NearSwap(Count(a), View(a), View(b), t, View(dst));
    }
}
