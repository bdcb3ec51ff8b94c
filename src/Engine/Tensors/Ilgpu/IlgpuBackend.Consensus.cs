namespace TaskMerge.Engine.Tensors.Ilgpu;

public sealed partial class IlgpuBackend
{
    /// <inheritdoc />
    public void SignAgreeAccumulate(Tensor x, Tensor total, float weight, Tensor numerator, Tensor denominator)
    {
        OpShapes.SameLength(x, total);
        OpShapes.SameLength(x, numerator);
        OpShapes.SameLength(x, denominator);
        if (x.Length > 0) _kernels.SignAgreeAccumulate(Count(x), View(x), View(total), weight, View(numerator), View(denominator));
    }

    /// <inheritdoc />
    public void DivClampedBelow(Tensor numerator, Tensor denominator, float floor, Tensor dst)
    {
        OpShapes.SameLength(numerator, denominator);
        OpShapes.SameLength(numerator, dst);
        if (numerator.Length > 0) _kernels.DivClampedBelow(Count(numerator), View(numerator), View(denominator), floor, View(dst));
    }
}
