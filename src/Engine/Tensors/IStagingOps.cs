namespace TaskMerge.Engine.Tensors;

/// <summary>
/// Uploads prepared on another thread: the merge loader decodes inputs into memory the backend
/// provides, overlapping the copy with the ops the driving thread is running.
/// </summary>
public interface IStagingOps : ITensorOps
{
    /// <summary>
    /// Starts a tensor of <paramref name="shape"/> whose values <paramref name="fill"/> writes into host
    /// memory the backend provides, from a thread other than the one driving the backend (a loader; one
    /// such thread at a time, concurrently with ops): a device backend hands out pinned memory and
    /// copies it on a copy stream of its own, so the upload overlaps the kernels being run meanwhile; the
    /// CPU backend fills a pooled array it then adopts. The driving thread makes the tensor with
    /// <see cref="StagedTensor.Take"/>, which is ordered after the copy.
    /// </summary>
    StagedTensor Stage(int[] shape, HostFill fill);
}
