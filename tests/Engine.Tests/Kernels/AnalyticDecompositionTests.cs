using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tensors.Ilgpu;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// Svd / SymmetricEigen / CholeskySolve against matrices with known factors (<see cref="AnalyticDecompositions"/>):
/// on the CPU backend, and on the ILGPU device path with the managed cuSOLVER stand-in, so the layout kernels
/// around the solver are checked against the answer, not only against the CPU backend.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class AnalyticDecompositionTests(IlgpuCpuFixture fixture)
{
    private const double Tolerance = 2e-5;

    [Theory]
    [InlineData(17, 11)]
    [InlineData(11, 17)]
    [InlineData(24, 24)]
    public void CpuBackendRecoversTheChosenFactors(int m, int n) =>
        AnalyticDecompositions.CheckAll(new CpuBackend(2), m, n, Tolerance);

    [Theory]
    [InlineData(17, 11)]
    [InlineData(11, 17)]
    public void DevicePathWithTheSolverStandInRecoversTheChosenFactors(int m, int n)
    {
        using var device = new IlgpuBackend(fixture.Device.Accelerator, new ManagedDeviceSolver());
        AnalyticDecompositions.CheckAll(device, m, n, Tolerance);
    }
}
