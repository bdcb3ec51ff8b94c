using TaskMerge.Engine.Tests.Kernels;

namespace TaskMerge.Engine.Tests.Gpu;

/// <summary>
/// Real cuSOLVER (float64 gesvd/gesvdj, syevd, potrf/potrs through the backend's layout kernels) against
/// matrices with known factors: the check that does not rest on <see cref="ManagedDeviceSolver"/>'s reading
/// of cuSOLVER's layout. The tolerance is the CPU one: the factorisations run in float64 on the device, and
/// only the float32 ↔ float64 conversions round.
/// </summary>
public sealed class CudaAnalyticDecompositionTests(CudaFixture fixture) : IClassFixture<CudaFixture>
{
    [Theory]
    [InlineData(257, 131)]
    [InlineData(131, 257)]
    [InlineData(96, 96)]
    public void CusolverRecoversTheChosenFactors(int m, int n) =>
        AnalyticDecompositions.CheckAll(fixture.Require(), m, n, 2e-5);
}
