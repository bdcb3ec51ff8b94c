namespace TaskMerge.Engine.Training;

/// <summary>
/// One frozen teacher tower's image embeddings [E] by auxiliary image index (ri.md §2.3): they
/// depend only on the image, so a batch whose images were all seen before skips the forward. A
/// batch with any unseen image runs the teacher on the whole batch (the same call an uncached run
/// makes), so cached and uncached runs see the same values as long as a row's result does not depend
/// on the other rows of the batch (true of the CPU tower: per-row LayerNorm and GEMM tiles).
/// Memory: E × 4 bytes per distinct image seen, at most min(aux count, steps × batch) images, plus one
/// reference per aux image.
/// </summary>
internal sealed class RiTeacherCache
{
    private readonly float[]?[] _rows;
    private readonly int _dim;

    /// <summary>A cache for <paramref name="count"/> images of width <paramref name="dim"/>; disabled it forwards every batch.</summary>
    public RiTeacherCache(int count, int dim, bool enabled = true)
    {
        _rows = enabled ? new float[count][] : [];
        _dim = dim;
    }

    /// <summary>Images run through the teacher so far (batch sizes summed over the forwards made).</summary>
    public long ImagesForwarded { get; private set; }

    /// <summary>
    /// The embeddings [B, E] of the images at <paramref name="indices"/>: from the cache when every one
    /// is there, else from <paramref name="forward"/> (the teacher on the whole batch), which then fills the cache.
    /// </summary>
    public float[] Embeddings(IReadOnlyList<int> indices, Func<float[]> forward)
    {
        if (_rows.Length > 0 && indices.All(i => _rows[i] is not null))
        {
            var o = new float[indices.Count * _dim];
            for (int k = 0; k < indices.Count; k++) _rows[indices[k]]!.CopyTo(o, k * _dim);
            return o;
        }
        var z = forward();
        ImagesForwarded += indices.Count;
        if (_rows.Length > 0)
            for (int k = 0; k < indices.Count; k++) _rows[indices[k]] ??= z.AsSpan(k * _dim, _dim).ToArray();
        return z;
    }
}
