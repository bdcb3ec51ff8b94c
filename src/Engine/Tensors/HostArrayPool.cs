using System.Collections.Concurrent;

namespace TaskMerge.Engine.Tensors;

/// <summary>
/// Recycles large host float arrays by exact length. A merge streams tensors of a handful of
/// shapes; fresh multi-megabyte arrays cost a page fault per 4 KiB on first touch, which on a
/// small machine costs more than the arithmetic. Arrays under 64 Ki elements are not pooled, and
/// the pool holds at most a quarter of the machine's memory (8 GiB at most).
/// </summary>
public static class HostArrayPool
{
    private const int MinPooledLength = 1 << 16;
    private static readonly ConcurrentDictionary<int, ConcurrentBag<float[]>> Bags = new();
    private static readonly long CapacityBytes = Math.Min(8L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);
    private static long _pooledBytes;

    /// <summary>An array of exactly <paramref name="length"/> elements with unspecified contents.</summary>
    public static float[] Rent(int length)
    {
        if (length >= MinPooledLength && Bags.TryGetValue(length, out var bag) && bag.TryTake(out var a))
        {
            Interlocked.Add(ref _pooledBytes, -4L * length);
            return a;
        }
        return GC.AllocateUninitializedArray<float>(length);
    }

    /// <summary>
    /// Hands <paramref name="array"/> back for reuse. The caller must hold the only reference that
    /// will ever be used again: the array may be given out by the next <see cref="Rent"/>.
    /// </summary>
    public static void Return(float[] array)
    {
        if (array.Length < MinPooledLength) return;
        long bytes = 4L * array.Length;
        if (Interlocked.Add(ref _pooledBytes, bytes) > CapacityBytes)
        {
            Interlocked.Add(ref _pooledBytes, -bytes);
            return;
        }
        Bags.GetOrAdd(array.Length, _ => []).Add(array);
    }
}
