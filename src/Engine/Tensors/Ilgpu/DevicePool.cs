using ILGPU;
using ILGPU.Runtime;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// Float buffers of an accelerator, cached by size class on release and handed out again, so a
/// merge that walks many same-shaped tensors allocates device memory only for the first few.
/// Size classes round up by at most 1/8 (8 classes per power of two, at least 1024 elements).
/// When an allocation fails the cache is freed and the allocation retried once. Allocating and
/// freeing bind the accelerator's context to the calling thread first (ILGPU does not).
/// </summary>
internal sealed class DevicePool(Accelerator accelerator) : IDisposable
{
    private const long MinCapacity = 1024;
    private readonly Dictionary<long, Stack<MemoryBuffer1D<float, Stride1D.Dense>>> _free = [];
    private readonly Lock _gate = new();

    /// <summary>Bytes held in released buffers, ready for reuse.</summary>
    public long CachedBytes { get; private set; }

    /// <summary>The buffer length handed out for a request of <paramref name="length"/> elements.</summary>
    public static long Capacity(long length)
    {
        if (length <= MinCapacity) return MinCapacity;
        long step = 1L << (60 - (int)long.LeadingZeroCount(length));
        return (length + step - 1) / step * step;
    }

    /// <summary>A buffer of at least <paramref name="length"/> elements (contents unspecified).</summary>
    public MemoryBuffer1D<float, Stride1D.Dense> Rent(long length)
    {
        long capacity = Capacity(length);
        lock (_gate)
        {
            if (_free.TryGetValue(capacity, out var stack) && stack.Count > 0)
            {
                CachedBytes -= capacity * sizeof(float);
                return stack.Pop();
            }
        }
        accelerator.Bind();
        try
        {
            return accelerator.Allocate1D<float>(capacity);
        }
        catch (Exception e) when ((e is OutOfMemoryException or AcceleratorException) && CachedBytes > 0)
        {
            Trim();
            return accelerator.Allocate1D<float>(capacity);
        }
    }

    /// <summary>Takes a buffer back for reuse.</summary>
    public void Return(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        lock (_gate)
        {
            if (!_free.TryGetValue(buffer.Length, out var stack)) _free[buffer.Length] = stack = new();
            stack.Push(buffer);
            CachedBytes += buffer.LengthInBytes;
        }
    }

    /// <summary>Frees every cached buffer.</summary>
    public void Trim()
    {
        lock (_gate)
        {
            accelerator.Bind();
            foreach (var stack in _free.Values)
                while (stack.Count > 0) stack.Pop().Dispose();
            CachedBytes = 0;
        }
    }

    /// <inheritdoc />
    public void Dispose() => Trim();
}
