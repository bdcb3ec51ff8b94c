using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// The device backend's <see cref="IStagingOps.Stage"/>: host→device uploads that overlap kernels.
/// <para>
/// A slot is a page-locked host array plus a device "landing" buffer of the same size. The loader
/// thread takes a free slot, lets <see cref="HostFill"/> decode straight into the pinned array, and
/// starts an asynchronous copy into the landing buffer on a dedicated non-blocking copy stream (the
/// backend's kernels run on the legacy default stream, which a blocking stream would serialise with),
/// recording a <see cref="StreamFence"/> "copied". The driving thread's <see cref="StagedTensor.Take"/>
/// waits for "copied", rents an ordinary pool tensor and copies landing → tensor on the default stream
/// (device-to-device, a few percent of the PCIe time), records "consumed" and frees the slot; the next
/// loader to take that slot waits for "consumed" before writing it again. Kernels therefore only ever
/// see pool buffers written in stream order, and pinned memory is never rewritten while a copy reads it.
/// </para>
/// <para>
/// Slots are made on demand with capacities in <see cref="DevicePool"/> size classes, up to
/// <see cref="BudgetBytes"/> of pinned memory; a tensor that finds no free slot within the budget goes
/// the plain way (pooled host array, synchronous upload at Take), so staging never blocks on a slot
/// held by a tensor not yet taken.
/// </para>
/// </summary>
internal sealed class HostStaging : IDisposable
{
    /// <summary>Default pinned-memory budget (the same again is held on the device as landing buffers).</summary>
    public const long DefaultBudgetBytes = 2L << 30;

    private readonly IlgpuBackend _backend;
    private readonly Accelerator _accelerator;
    private readonly AcceleratorStream _copyStream;
    private readonly List<Slot> _slots = [];
    private readonly Lock _gate = new();
    private long _pinnedBytes;
    private bool _disposed;

    public HostStaging(IlgpuBackend backend, Accelerator accelerator)
    {
        _backend = backend;
        _accelerator = accelerator;
        accelerator.Bind();
        _copyStream = accelerator is CudaAccelerator cuda ? cuda.CreateStream(StreamFlags.CU_STREAM_NON_BLOCKING) : accelerator.CreateStream();
    }

    /// <summary>Most pinned bytes the slots may hold together.</summary>
    public long BudgetBytes { get; set; } = DefaultBudgetBytes;

    /// <summary>Tensors staged through pinned slots so far.</summary>
    public long PinnedUploads { get; private set; }

    /// <summary>Tensors that found no slot within the budget and were uploaded the plain way.</summary>
    public long PlainUploads { get; private set; }

    /// <summary>Why pinned staging was switched off (a slot could not be made), or null.</summary>
    public string? Unavailable { get; private set; }

    /// <summary>Pinned bytes held by the slots.</summary>
    public long PinnedBytes
    {
        get { lock (_gate) return _pinnedBytes; }
    }

    public StagedTensor Stage(int[] shape, HostFill fill)
    {
        long length = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(",", shape)}]");
            length *= d;
        }
        // ILGPU binds the CUDA context for its copies but not for allocations, page locking or events,
        // and the loader thread has not bound it yet.
        _accelerator.Bind();
        var slot = length == 0 ? null : Acquire(length);
        if (slot is null) return StagePlain(shape, length, fill);
        try
        {
            slot.Consumed.Wait();
            fill(slot.Host.Span[..(int)length]);
            slot.Host.ArrayView.SubView(0, length).CopyTo(_copyStream, slot.Landing.AsArrayView<float>(0, length));
            slot.Copied.Record(_copyStream);
        }
        catch
        {
            Release(slot);
            throw;
        }
        lock (_gate) PinnedUploads++;
        return new PinnedStagedTensor(this, shape, slot, length);
    }

    private StagedTensor StagePlain(int[] shape, long length, HostFill fill)
    {
        var values = HostArrayPool.Rent(checked((int)length));
        try
        {
            fill(values);
        }
        catch
        {
            HostArrayPool.Return(values);
            throw;
        }
        lock (_gate) PlainUploads++;
        return new PlainStagedTensor(_backend, shape, values);
    }

    /// <summary>
    /// The smallest free slot that holds <paramref name="length"/> floats, else a new one within the budget
    /// (freeing smaller free slots to make room), else null.
    /// </summary>
    private Slot? Acquire(long length)
    {
        long capacity = DevicePool.Capacity(length);
        var retired = new List<Slot>();
        try
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                var best = _slots.Where(s => !s.InUse && s.Capacity >= length).MinBy(s => s.Capacity);
                if (best is not null)
                {
                    best.InUse = true;
                    return best;
                }
                long bytes = capacity * sizeof(float);
                foreach (var small in _slots.Where(s => !s.InUse).OrderBy(s => s.Capacity).ToList())
                {
                    if (_pinnedBytes + bytes <= BudgetBytes) break;
                    _slots.Remove(small);
                    _pinnedBytes -= small.Capacity * sizeof(float);
                    retired.Add(small);
                }
                if (_pinnedBytes + bytes > BudgetBytes) return null;
                _pinnedBytes += bytes;
            }
            Slot slot;
            try
            {
                slot = new Slot(_accelerator, capacity) { InUse = true };
            }
            catch (Exception e)
            {
                lock (_gate) _pinnedBytes -= capacity * sizeof(float);
                if (e is not (NotSupportedException or AcceleratorException or OutOfMemoryException)) throw;
                // No page locking on this device (or no room for a slot): every upload goes the plain way.
                BudgetBytes = 0;
                Unavailable = $"{e.GetType().Name}: {e.Message}";
                return null;
            }
            lock (_gate) _slots.Add(slot);
            return slot;
        }
        finally
        {
            if (retired.Count > 0) _accelerator.Bind();
            foreach (var s in retired) s.Dispose();
        }
    }

    private void Release(Slot slot)
    {
        lock (_gate) slot.InUse = false;
    }

    /// <summary>Copies a staged tensor out of its slot on the default stream and frees the slot (the driving thread).</summary>
    private Tensor Take(int[] shape, Slot slot, long length)
    {
        try
        {
            slot.Copied.Wait();
            var t = _backend.Empty(shape);
            _accelerator.Bind();
            slot.Landing.AsArrayView<float>(0, length).CopyTo(_accelerator.DefaultStream, _backend.ViewOf(t));
            slot.Consumed.Record(_accelerator.DefaultStream);
            return t;
        }
        finally
        {
            Release(slot);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _accelerator.Bind();
        _copyStream.Synchronize();
        _accelerator.Synchronize();
        foreach (var s in _slots) s.Dispose();
        _slots.Clear();
        _copyStream.Dispose();
    }

    /// <summary>A pinned host array, its device landing buffer, and the fences ordering their reuse.</summary>
    private sealed class Slot(Accelerator accelerator, long capacity) : IDisposable
    {
        public long Capacity { get; } = capacity;
        public PageLockedArray1D<float> Host { get; } = accelerator.AllocatePageLocked1D<float>(capacity, uninitialized: true);
        public MemoryBuffer1D<float, Stride1D.Dense> Landing { get; } = accelerator.Allocate1D<float>(capacity);
        public StreamFence Copied { get; } = new(accelerator);
        public StreamFence Consumed { get; } = new(accelerator);
        public bool InUse { get; set; }

        public void Dispose()
        {
            Copied.Wait();
            Consumed.Wait();
            Copied.Dispose();
            Consumed.Dispose();
            Landing.Dispose();
            Host.Dispose();
        }
    }

    private sealed class PinnedStagedTensor(HostStaging staging, int[] shape, Slot slot, long length) : StagedTensor(shape)
    {
        private protected override Tensor TakeCore() => staging.Take(Dimensions, slot, length);

        private protected override void ReleaseCore()
        {
            // The copy may still be reading the pinned array.
            slot.Copied.Wait();
            staging.Release(slot);
        }
    }

    private sealed class PlainStagedTensor(IlgpuBackend backend, int[] shape, float[] values) : StagedTensor(shape)
    {
        private protected override Tensor TakeCore()
        {
            try
            {
                return backend.FromHost(values, Dimensions);
            }
            finally
            {
                HostArrayPool.Return(values);
            }
        }

        private protected override void ReleaseCore() => HostArrayPool.Return(values);
    }
}
