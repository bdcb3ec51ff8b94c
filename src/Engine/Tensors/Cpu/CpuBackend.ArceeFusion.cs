using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void ArceeFusionImportance(Tensor tuned, Tensor baseValues, int rowLength, Tensor dst)
    {
        OpShapes.SameLength(tuned, baseValues);
        OpShapes.SameLength(tuned, dst);
        int rows = tuned.Length == 0 ? 0 : OpShapes.RowCount(tuned, rowLength, "arcee-fusion-importance");
        float[] t = Data(tuned), b = Data(baseValues), d = Data(dst);
        Parallel.For(0, rows, _parallel, r =>
        {
            long o = (long)r * rowLength;
            float maxT = t[o], maxB = b[o];
            for (int j = 1; j < rowLength; j++)
            {
                if (t[o + j] > maxT) maxT = t[o + j];
                if (b[o + j] > maxB) maxB = b[o + j];
            }
            double sumT = 0, sumB = 0;
            for (int j = 0; j < rowLength; j++)
            {
                sumT += Math.Exp(t[o + j] - maxT);
                sumB += Math.Exp(b[o + j] - maxB);
            }
            double kl = 0;
            for (int j = 0; j < rowLength; j++)
            {
                double p = Math.Exp(t[o + j] - maxT) / sumT + ArceeFusionKernels.SoftmaxEpsilon;
                double q = Math.Exp(b[o + j] - maxB) / sumB + ArceeFusionKernels.SoftmaxEpsilon;
                kl += p * Math.Log(p / q);
            }
            for (int j = 0; j < rowLength; j++) d[o + j] = Math.Abs(t[o + j] - b[o + j]) * (float)kl;
        });
    }
}
