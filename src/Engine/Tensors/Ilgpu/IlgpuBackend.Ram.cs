namespace TaskMerge.Engine.Tensors.Ilgpu;

public sealed partial class IlgpuBackend
{
    /// <inheritdoc />
    public void CountMagnitudeAbove(Tensor x, float threshold, Tensor counts)
    {
        OpShapes.SameLength(x, counts);
        if (x.Length > 0) _kernels.CountMagnitudeAbove(Count(x), View(x), threshold, View(counts));
    }

    /// <inheritdoc />
    public void RamAccumulate(Tensor taskVector, float epsilon, Tensor counts, float uniqueScale, Tensor dst)
    {
        OpShapes.SameLength(taskVector, counts);
        OpShapes.SameLength(taskVector, dst);
        if (taskVector.Length > 0) _kernels.RamAccumulate(Count(taskVector), View(taskVector), epsilon, View(counts), uniqueScale, View(dst));
    }

    /// <inheritdoc />
    public void RamClassify(Tensor taskVector, float epsilon, Tensor counts, Tensor unique, Tensor shared)
    {
        OpShapes.SameLength(taskVector, counts);
        OpShapes.SameLength(taskVector, unique);
        OpShapes.SameLength(taskVector, shared);
        if (taskVector.Length > 0) _kernels.RamClassify(Count(taskVector), View(taskVector), epsilon, View(counts), View(unique), View(shared));
    }
}
