namespace TaskMerge.Engine.Tensors;

/// <summary>
/// A dense, row-major float32 tensor owned by one <see cref="IBackend"/>. Where the values live
/// (host array, device buffer) is the backend's business; callers only pass tensors to backend ops.
/// </summary>
public sealed class Tensor : IDisposable
{
    private readonly int[] _shape;

    internal Tensor(IBackend backend, ReadOnlySpan<int> shape, object storage)
    {
        Backend = backend;
        _shape = shape.ToArray();
        long n = 1;
        foreach (int d in _shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(",", _shape)}]");
            n *= d;
        }
        Length = n;
        Storage = storage;
    }

    /// <summary>The backend that owns the storage.</summary>
    public IBackend Backend { get; }

    /// <summary>Dimensions, outermost first.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Rows of a 2-D tensor.</summary>
    public int Rows => Rank == 2 ? _shape[0] : throw new InvalidOperationException("not a 2-D tensor");

    /// <summary>Columns of a 2-D tensor.</summary>
    public int Cols => Rank == 2 ? _shape[1] : throw new InvalidOperationException("not a 2-D tensor");

    internal object Storage { get; private set; }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => Storage is null;

    /// <summary>Copies the values to a new host array.</summary>
    public float[] ToArray()
    {
        var a = new float[Length];
        Backend.Download(this, a);
        return a;
    }

    /// <summary>Returns the storage to the backend.</summary>
    public void Dispose()
    {
        if (Storage is null) return;
        Backend.Release(this);
        Storage = null!;
    }

    /// <inheritdoc />
    public override string ToString() => $"Tensor[{string.Join(",", _shape)}] on {Backend.Name}";
}
