using ILGPU;
using ILGPU.Runtime;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Ilgpu;
using TaskMerge.Kernels;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;
using static TaskMerge.Engine.Tests.Kernels.Decompositions;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// The device backend's Svd / SymmetricEigen / CholeskySolve on ILGPU's CPU accelerator, both ways it
/// can run there: the host fallback (what CI and any non-CUDA accelerator use), and the device path —
/// float32→float64 layout kernels, factorisation, narrowing back — with a managed stand-in for cuSOLVER
/// (<see cref="ManagedDeviceSolver"/>), against the CPU backend.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class DeviceLinearAlgebraTests : IDisposable
{
    private readonly IlgpuBackend _fallback;
    private readonly IBackend _cpu;
    private readonly ManagedDeviceSolver _solver = new();
    private readonly IlgpuBackend _device;

    public DeviceLinearAlgebraTests(IlgpuCpuFixture fixture)
    {
        _fallback = fixture.Device;
        _cpu = fixture.Cpu;
        _device = new IlgpuBackend(fixture.Device.Accelerator, _solver);
    }

    public void Dispose() => _device.Dispose();

    [Fact]
    public void OnTheCpuAcceleratorTheHostPathIsChosenAndSaysWhy()
    {
        Assert.StartsWith("host float64", _fallback.LinearAlgebraEngine);
        Assert.Contains("no cuSOLVER on a CPU accelerator", _fallback.LinearAlgebraEngine);
        Assert.Equal(_solver.Description, _device.LinearAlgebraEngine);
    }

    [Theory]
    [InlineData(37, 23)]
    [InlineData(23, 37)]
    [InlineData(30, 30)]
    public void HostFallbackSvdIsTheCpuBackendsBitForBit(int m, int n)
    {
        var a = Gaussian(m, n, m * 100 + n);
        var cpu = Svd(_cpu, a, m, n);
        var host = Svd(_fallback, a, m, n);
        Assert.Equal(cpu.U, host.U);
        Assert.Equal(cpu.S, host.S);
        Assert.Equal(cpu.Vt, host.Vt);
    }

    [Fact]
    public void HostFallbackEigenAndCholeskyAreTheCpuBackendsBitForBit()
    {
        var sym = Symmetric(29, 3);
        var cpu = Eigen(_cpu, sym, 29);
        var host = Eigen(_fallback, sym, 29);
        Assert.Equal(cpu.Values, host.Values);
        Assert.Equal(cpu.Vectors, host.Vectors);

        var spd = Spd(29, 40, 0.1, 4);
        var b = Gaussian(7, 29, 5);
        AssertSameSolve(Decompositions.CholeskySolve(_cpu, spd, 29, 0.25, b, 7), Decompositions.CholeskySolve(_fallback, spd, 29, 0.25, b, 7));
    }

    [Theory]
    [InlineData(37, 23)]
    [InlineData(23, 37)]
    [InlineData(30, 30)]
    [InlineData(1, 9)]
    [InlineData(9, 1)]
    public void DevicePathSvdMatchesTheCpuBackend(int m, int n)
    {
        var a = Gaussian(m, n, m * 31 + n);
        AssertSvdMatches(Svd(_cpu, a, m, n), Svd(_device, a, m, n), a, m, n, 1e-5);
        Assert.Equal(nameof(ManagedDeviceSolver.Gesvdj), _solver.Calls[^1]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(40)]
    public void DevicePathEigenMatchesTheCpuBackend(int n)
    {
        var a = Symmetric(n, n + 7);
        AssertEigenMatches(Eigen(_cpu, a, n), Eigen(_device, a, n), n, 1e-5);
        Assert.Equal(nameof(ManagedDeviceSolver.Syevd), _solver.Calls[^1]);
    }

    [Theory]
    [InlineData(5, 3, 0.0)]
    [InlineData(33, 9, 0.5)]
    [InlineData(48, 1, 1e-3)]
    public void DevicePathCholeskySolveMatchesTheCpuBackend(int n, int rows, double shift)
    {
        var a = Spd(n, n + 5, 0.05, n);
        var b = Gaussian(rows, n, n + 1);
        var (cpuSolved, expected) = Decompositions.CholeskySolve(_cpu, a, n, shift, b, rows);
        var (deviceSolved, actual) = Decompositions.CholeskySolve(_device, a, n, shift, b, rows);
        Assert.True(cpuSolved && deviceSolved);
        AssertClose(expected, actual, 1e-5, "B·(A + shift·I)⁻¹", floor: expected.Max(MathF.Abs));
        Assert.Equal([nameof(ManagedDeviceSolver.Potrf), nameof(ManagedDeviceSolver.Potrs)], _solver.Calls[^2..]);
    }

    [Fact]
    public void DevicePathReportsANonPositiveDefiniteMatrixAndLeavesBAlone()
    {
        float[] a = [1f, 2f, 2f, 1f], b = [1f, 2f, 3f, 4f];
        AssertSameSolve((false, b), Decompositions.CholeskySolve(_device, a, 2, 0, b, 2));
        var (solved, x) = Decompositions.CholeskySolve(_device, a, 2, 4, b, 2);
        Assert.True(solved);
        AssertClose(Decompositions.CholeskySolve(_cpu, a, 2, 4, b, 2).X, x, 1e-6, "shifted solve");
    }

    [Fact]
    public void ANaNPivotTheSolverLetsThroughIsStillNotPositiveDefinite()
    {
        var a = Spd(6, 10, 0.5, 8);
        var b = Gaussian(2, 6, 9);
        a[3 * 6 + 3] = float.NaN;
        Assert.False(Decompositions.CholeskySolve(_cpu, a, 6, 0, b, 2).Solved);
        AssertSameSolve((false, b), Decompositions.CholeskySolve(_device, a, 6, 0, b, 2));
    }

    [Fact]
    public void OnlyTheLowerTriangleOfAIsRead()
    {
        var a = Spd(6, 10, 0.5, 10);
        var b = Gaussian(3, 6, 11);
        var expected = Decompositions.CholeskySolve(_cpu, a, 6, 0, b, 3);
        for (int i = 0; i < 6; i++)
            for (int j = i + 1; j < 6; j++) a[i * 6 + j] = float.NaN;
        AssertSameSolve(expected, Decompositions.CholeskySolve(_cpu, a, 6, 0, b, 3));
        var (solved, x) = Decompositions.CholeskySolve(_device, a, 6, 0, b, 3);
        Assert.True(solved);
        AssertClose(expected.X, x, 1e-5, "lower-triangle solve", floor: x.Max(MathF.Abs));
    }

    [Fact]
    public void AFactorisationThatDoesNotConvergeIsRedoneOnTheHost()
    {
        var a = Gaussian(20, 12, 12);
        var cpu = Svd(_cpu, a, 20, 12);
        _solver.FailNext = true;
        var device = Svd(_device, a, 20, 12);
        Assert.Equal(cpu.U, device.U);
        Assert.Equal(cpu.S, device.S);
        Assert.Equal(cpu.Vt, device.Vt);

        var sym = Symmetric(15, 13);
        var cpuEigen = Eigen(_cpu, sym, 15);
        _solver.FailNext = true;
        var deviceEigen = Eigen(_device, sym, 15);
        Assert.Equal(cpuEigen.Values, deviceEigen.Values);
        Assert.Equal(cpuEigen.Vectors, deviceEigen.Vectors);
    }

    [Fact]
    public void NonFiniteInputGivesNaNWithoutCallingTheSolver()
    {
        var a = Gaussian(8, 5, 14);
        a[17] = float.PositiveInfinity;
        int calls = _solver.Calls.Count;
        var svd = Svd(_device, a, 8, 5);
        Assert.All(svd.U.Concat(svd.S).Concat(svd.Vt), v => Assert.True(float.IsNaN(v)));
        var sym = Symmetric(5, 15);
        sym[7] = float.NaN;
        var eigen = Eigen(_device, sym, 5);
        Assert.All(eigen.Values.Concat(eigen.Vectors), v => Assert.True(float.IsNaN(v)));
        Assert.Equal(calls, _solver.Calls.Count);
    }

    [Fact]
    public void BadShapesFailLikeOnTheCpu()
    {
        using var a = _device.Zeros(4, 3);
        using var u = _device.Zeros(4, 4);
        using var s = _device.Zeros(3);
        using var vt = _device.Zeros(3, 3);
        Assert.Contains("u must be 4x3", Assert.Throws<ArgumentException>(() => _device.Svd(a, u, s, vt)).Message);
        Assert.Contains("must be square", Assert.Throws<ArgumentException>(() => _device.SymmetricEigen(a, s, vt)).Message);
        Assert.Contains("must be square", Assert.Throws<ArgumentException>(() => _device.CholeskySolve(a, 0, u)).Message);
    }

    [Fact]
    public void WudiClosedFormSolvesThroughTheDeviceCholesky()
    {
        const int rows = 48, cols = 16, tasks = 3;
        var taus = Enumerable.Range(0, tasks).Select(i => RandomValues(rows * cols, 20 + i, 1e-3f)).ToArray();
        var settings = new WudiMethod.Settings(0, 1e-5f, ClosedForm: true, Ridge: 1e-4, Scaling: 1, LogLoss: true, LogEvery: 10);
        (float[] Tau, Dictionary<string, object> Diagnostics) Solve(IBackend be)
        {
            var diagnostics = new Dictionary<string, object>();
            var m = WudiMethod.SolveTaskVector(be, [rows], cols, Enumerable.Range(0, tasks).ToArray(),
                i => [Load(be, taus[i], rows, cols)], settings, "w", diagnostics);
            return (be.DetachToHost(m[0]), diagnostics);
        }
        var cpu = Solve(_cpu);
        _solver.Calls.Clear();
        var device = Solve(_device);
        Assert.Equal([nameof(ManagedDeviceSolver.Potrf), nameof(ManagedDeviceSolver.Potrs)], _solver.Calls);
        AssertClose(cpu.Tau, device.Tau, 1e-4, "τ*", floor: cpu.Tau.Max(MathF.Abs));
        double expected = (double)cpu.Diagnostics["loss_final"], actual = (double)device.Diagnostics["loss_final"];
        Assert.True(Math.Abs(expected - actual) <= 1e-5 * expected, $"loss at τ*: cpu {expected}, device {actual}");
    }

    private static void AssertSameSolve((bool Solved, float[] X) expected, (bool Solved, float[] X) actual)
    {
        Assert.Equal(expected.Solved, actual.Solved);
        Assert.Equal(expected.X, actual.X);
    }

    [Theory]
    [InlineData(1, 7)]
    [InlineData(5, 3)]
    [InlineData(4, 4)]
    public void LayoutKernelsWidenAndNarrowWithAndWithoutTranspose(int rows, int cols)
    {
        var accelerator = _device.Accelerator;
        var src = RandomValues(rows * cols, rows * cols);
        using var f = accelerator.Allocate1D(src);
        using var d = accelerator.Allocate1D<double>(rows * cols);
        using var back = accelerator.Allocate1D<float>(rows * cols);
        var toDouble = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<double>, int, int, int>(SolverKernels.ToDouble);
        var toFloat = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<float>, int, int, int>(SolverKernels.ToFloat);
        foreach (int transpose in new[] { 0, 1 })
        {
            toDouble(rows * cols, f.View, d.View, rows, cols, transpose);
            var wide = d.GetAsArray1D();
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    Assert.Equal(src[i * cols + j], wide[transpose == 1 ? i + j * rows : i * cols + j]);
            toFloat(rows * cols, d.View, back.View, rows, cols, transpose);
            Assert.Equal(src, back.GetAsArray1D());
        }
    }

    [Fact]
    public void DiagonalKernelsShiftAndFlagBadPivots()
    {
        var accelerator = _device.Accelerator;
        using var m = accelerator.Allocate1D(new double[] { 1, 9, 9, 2 });
        using var flag = accelerator.Allocate1D(new[] { 0 });
        accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, int, double>(SolverKernels.AddToDiagonal)(2, m.View, 2, 0.5);
        Assert.Equal([1.5, 9, 9, 2.5], m.GetAsArray1D());
        var check = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, int, ArrayView<int>>(SolverKernels.FlagBadPivots);
        check(2, m.View, 2, flag.View);
        Assert.Equal(0, flag.GetAsArray1D()[0]);
        foreach (double bad in new[] { 0, -1, double.NaN, double.PositiveInfinity })
        {
            m.View.SubView(3, 1).CopyFromCPU([bad]);
            flag.MemSetToZero();
            check(2, m.View, 2, flag.View);
            Assert.Equal(1, flag.GetAsArray1D()[0]);
        }
    }
}
