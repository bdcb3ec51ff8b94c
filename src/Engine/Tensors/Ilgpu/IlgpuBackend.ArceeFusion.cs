namespace TaskMerge.Engine.Tensors.Ilgpu;

public sealed partial class IlgpuBackend
{
    /// <inheritdoc />
    public void ArceeFusionImportance(Tensor tuned, Tensor baseValues, int rowLength, Tensor dst)
    {
        OpShapes.SameLength(tuned, baseValues);
        OpShapes.SameLength(tuned, dst);
        if (tuned.Length == 0) return;
        int rows = OpShapes.RowCount(tuned, rowLength, "arcee-fusion-importance");
        _kernels.ArceeFusionImportance(rows, View(tuned), View(baseValues), rowLength, View(dst));
    }
}
