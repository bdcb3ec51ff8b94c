using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using TaskMerge.Engine.Native;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// A cuSOLVER dense handle bound to a CUDA accelerator's context and default stream (the stream every
/// kernel of the backend runs on, so factorisations are ordered with them without extra
/// synchronisation). Workspaces are sized by the <c>*_bufferSize</c> queries and rented from the
/// backend's <see cref="DevicePool"/>; devInfo lives in a one-int device buffer and is read back after
/// each factorisation, which is the only host synchronisation a call makes.
/// </summary>
internal sealed class CusolverSession : IDeviceSolver
{
    private readonly CudaAccelerator _accelerator;
    private readonly DevicePool _pool;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _devInfo;
    private IntPtr _handle, _gesvdj;

    private CusolverSession(CudaAccelerator accelerator, DevicePool pool, IntPtr handle, IntPtr gesvdj, string description)
    {
        _accelerator = accelerator;
        _pool = pool;
        _handle = handle;
        _gesvdj = gesvdj;
        _devInfo = accelerator.Allocate1D<int>(1);
        Description = description;
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <summary>The raw handle, for calls the session does not wrap (benchmarks).</summary>
    public IntPtr Handle => _handle;

    /// <summary>The gesvdj parameters (library defaults: tolerance = machine epsilon, 100 sweeps).</summary>
    public IntPtr GesvdjInfo => _gesvdj;

    /// <summary>
    /// A session on <paramref name="accelerator"/>, or null when cuSOLVER cannot be loaded or
    /// initialised; <paramref name="detail"/> says why not.
    /// </summary>
    public static CusolverSession? TryCreate(CudaAccelerator accelerator, DevicePool pool, out string detail)
    {
        if (!CudaLibraries.TryLoadCusolver(out detail)) return null;
        IntPtr handle = IntPtr.Zero, gesvdj = IntPtr.Zero;
        try
        {
            accelerator.Bind();
            CudaStatus.CheckCusolver(Cusolver.cusolverDnCreate(out handle), nameof(Cusolver.cusolverDnCreate));
            var stream = ((CudaStream)accelerator.DefaultStream).StreamPtr;
            CudaStatus.CheckCusolver(Cusolver.cusolverDnSetStream(handle, stream), nameof(Cusolver.cusolverDnSetStream));
            CudaStatus.CheckCusolver(Cusolver.cusolverDnCreateGesvdjInfo(out gesvdj), nameof(Cusolver.cusolverDnCreateGesvdjInfo));
            return new CusolverSession(accelerator, pool, handle, gesvdj, $"cuSOLVER ({detail}), float64");
        }
        catch (Exception e) when (e is CudaLibraryException or EntryPointNotFoundException or DllNotFoundException)
        {
            if (gesvdj != IntPtr.Zero) Cusolver.cusolverDnDestroyGesvdjInfo(gesvdj);
            if (handle != IntPtr.Zero) Cusolver.cusolverDnDestroy(handle);
            detail = $"cuSOLVER unusable: {e.Message}";
            return null;
        }
    }

    /// <inheritdoc />
    public int Syevd(int n, IntPtr a, IntPtr w)
    {
        _accelerator.Bind();
        Check(Cusolver.cusolverDnDsyevd_bufferSize(_handle, CusolverEigMode.Vector, CublasFillMode.Lower, n, a, n, w, out int lwork),
            nameof(Cusolver.cusolverDnDsyevd_bufferSize));
        using var work = Workspace(lwork);
        Check(Cusolver.cusolverDnDsyevd(_handle, CusolverEigMode.Vector, CublasFillMode.Lower, n, a, n, w, work.Pointer, lwork, _devInfo.NativePtr),
            nameof(Cusolver.cusolverDnDsyevd));
        return Info(nameof(Cusolver.cusolverDnDsyevd));
    }

    /// <inheritdoc />
    public int Gesvdj(int m, int n, IntPtr a, IntPtr s, IntPtr u, IntPtr v)
    {
        _accelerator.Bind();
        Check(Cusolver.cusolverDnDgesvdj_bufferSize(_handle, CusolverEigMode.Vector, 1, m, n, a, m, s, u, m, v, n, out int lwork, _gesvdj),
            nameof(Cusolver.cusolverDnDgesvdj_bufferSize));
        using var work = Workspace(lwork);
        Check(Cusolver.cusolverDnDgesvdj(_handle, CusolverEigMode.Vector, 1, m, n, a, m, s, u, m, v, n, work.Pointer, lwork, _devInfo.NativePtr, _gesvdj),
            nameof(Cusolver.cusolverDnDgesvdj));
        return Info(nameof(Cusolver.cusolverDnDgesvdj));
    }

    /// <inheritdoc />
    public int Potrf(int n, IntPtr a)
    {
        _accelerator.Bind();
        Check(Cusolver.cusolverDnDpotrf_bufferSize(_handle, CublasFillMode.Upper, n, a, n, out int lwork), nameof(Cusolver.cusolverDnDpotrf_bufferSize));
        using var work = Workspace(lwork);
        Check(Cusolver.cusolverDnDpotrf(_handle, CublasFillMode.Upper, n, a, n, work.Pointer, lwork, _devInfo.NativePtr), nameof(Cusolver.cusolverDnDpotrf));
        return Info(nameof(Cusolver.cusolverDnDpotrf));
    }

    /// <inheritdoc />
    public void Potrs(int n, int nrhs, IntPtr a, IntPtr b)
    {
        _accelerator.Bind();
        Check(Cusolver.cusolverDnDpotrs(_handle, CublasFillMode.Upper, n, nrhs, a, n, b, n, _devInfo.NativePtr), nameof(Cusolver.cusolverDnDpotrs));
        Info(nameof(Cusolver.cusolverDnDpotrs));
    }

    private static void Check(int status, string call) => CudaStatus.CheckCusolver(status, call);

    /// <summary>devInfo after the call: negative (an illegal argument) throws, naming the call and the argument.</summary>
    private int Info(string call)
    {
        int info = 0;
        _devInfo.AsArrayView<int>(0, 1).CopyToCPU(new Span<int>(ref info));
        if (info < 0) throw new CudaLibraryException(call, info, $"devInfo: argument {-info} had an illegal value");
        return info;
    }

    /// <summary>A float64 workspace of <paramref name="lwork"/> elements from the pool (two floats each).</summary>
    private PooledDoubles Workspace(int lwork) => PooledDoubles.Rent(_pool, Math.Max(1, lwork));

    /// <inheritdoc />
    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        _accelerator.Bind();
        Cusolver.cusolverDnDestroyGesvdjInfo(_gesvdj);
        Cusolver.cusolverDnDestroy(_handle);
        _devInfo.Dispose();
        _handle = _gesvdj = IntPtr.Zero;
    }
}

/// <summary>A float64 array in a buffer rented from a <see cref="DevicePool"/> (which holds floats), returned on dispose.</summary>
internal readonly struct PooledDoubles : IDisposable
{
    private readonly DevicePool _pool;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _buffer;

    private PooledDoubles(DevicePool pool, MemoryBuffer1D<float, Stride1D.Dense> buffer, long length)
    {
        _pool = pool;
        _buffer = buffer;
        Length = length;
    }

    /// <summary>Rents room for <paramref name="length"/> doubles (contents unspecified).</summary>
    public static PooledDoubles Rent(DevicePool pool, long length) => new(pool, pool.Rent(2 * length), length);

    public long Length { get; }

    public ArrayView<double> View => _buffer.AsArrayView<float>(0, 2 * Length).Cast<double>();

    public IntPtr Pointer => _buffer.NativePtr;

    public void Dispose() => _pool.Return(_buffer);
}
