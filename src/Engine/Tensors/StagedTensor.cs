namespace TaskMerge.Engine.Tensors;

/// <summary>Writes a tensor's values into the host memory <see cref="IStagingOps.Stage"/> provides (exactly one value per element).</summary>
public delegate void HostFill(Span<float> values);

/// <summary>
/// A tensor on its way to a backend, made by <see cref="IStagingOps.Stage"/> on a loader thread: its values
/// sit in host memory the backend chose and, on a device, are already being copied over. The thread
/// driving the backend turns it into a tensor with <see cref="Take"/>, once; disposing one that was never
/// taken gives its staging memory back.
/// </summary>
public abstract class StagedTensor : IDisposable
{
    private readonly int[] _shape;
    private int _done;

    private protected StagedTensor(int[] shape) => _shape = shape;

    /// <summary>Dimensions, outermost first.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    private protected int[] Dimensions => _shape;

    /// <summary>The tensor, on the backend's driving thread; the caller owns it. A second call throws.</summary>
    public Tensor Take()
    {
        if (Interlocked.Exchange(ref _done, 1) != 0) throw new InvalidOperationException($"staged tensor [{string.Join(",", _shape)}] was already taken or disposed");
        return TakeCore();
    }

    /// <summary>Gives the staging memory back if the tensor was never taken.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _done, 1) == 0) ReleaseCore();
    }

    private protected abstract Tensor TakeCore();

    private protected abstract void ReleaseCore();
}
