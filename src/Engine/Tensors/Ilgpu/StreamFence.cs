using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// A point in a stream that a thread can wait for: a CUDA event (timing disabled) on a CUDA accelerator.
/// On other accelerators (ILGPU's CPU simulator) copies and launches complete before they return, so
/// recording synchronises the stream and waiting is immediate. Recorded by one thread and waited on by
/// another, with the hand-over ordered by the caller.
/// </summary>
internal sealed class StreamFence : IDisposable
{
    private readonly Accelerator _accelerator;
    private IntPtr _event;
    private bool _recorded;

    public StreamFence(Accelerator accelerator)
    {
        _accelerator = accelerator;
        if (accelerator is not CudaAccelerator) return;
        accelerator.Bind();
        CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.CreateEvent(out _event, CudaEventFlags.CU_EVENT_DISABLE_TIMING));
    }

    /// <summary>Marks the current end of <paramref name="stream"/>: <see cref="Wait"/> returns once the work before it is done.</summary>
    public void Record(AcceleratorStream stream)
    {
        if (_event == IntPtr.Zero)
            stream.Synchronize();
        else
        {
            _accelerator.Bind();
            CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.RecordEvent(_event, ((CudaStream)stream).StreamPtr));
        }
        _recorded = true;
    }

    /// <summary>Blocks the calling thread until the recorded point is reached (at once if never recorded).</summary>
    public void Wait()
    {
        if (!_recorded || _event == IntPtr.Zero) return;
        _accelerator.Bind();
        CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.SynchronizeEvent(_event));
    }

    public void Dispose()
    {
        if (_event == IntPtr.Zero) return;
        _accelerator.Bind();
        CudaAPI.CurrentAPI.DestroyEvent(_event);
        _event = IntPtr.Zero;
    }
}
