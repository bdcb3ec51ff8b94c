using ILGPU;

namespace TaskMerge.Kernels;

/// <summary>
/// Whole-group collectives in shared memory for explicitly grouped kernels. The group size must
/// be a power of two no larger than <see cref="MaxGroupSize"/>; every thread of the group must call.
/// The tree shape depends only on the group size, so a result is the same on every run.
/// </summary>
internal static class GroupOps
{
    /// <summary>Largest group size the shared buffers are sized for.</summary>
    public const int MaxGroupSize = 256;

    /// <summary>Σ of <paramref name="value"/> over the group, returned to every thread.</summary>
    public static double Sum(double value) => Tree<double, AddDouble>(value);

    /// <summary>Σ of <paramref name="value"/> over the group, returned to every thread.</summary>
    public static int Sum(int value) => Tree<int, AddInt>(value);

    /// <summary>Maximum of <paramref name="value"/> over the group, returned to every thread.</summary>
    public static uint Max(uint value) => Tree<uint, MaxUInt>(value);

    /// <summary>An associative combine of two values; a struct so ILGPU inlines it into <see cref="Tree{T, TCombine}"/>.</summary>
    public interface ICombine<T> where T : unmanaged
    {
        /// <summary>The combination of <paramref name="a"/> (lower thread) and <paramref name="b"/> (higher thread).</summary>
        T Combine(T a, T b);
    }

    private readonly struct AddDouble : ICombine<double>
    {
        public double Combine(double a, double b) => a + b;
    }

    private readonly struct AddInt : ICombine<int>
    {
        public int Combine(int a, int b) => a + b;
    }

    private readonly struct MaxUInt : ICombine<uint>
    {
        public uint Combine(uint a, uint b) => b > a ? b : a;
    }

    /// <summary>
    /// The group's values folded pairwise in shared memory, halving the active threads each step
    /// (thread t combines t and t + s), returned to every thread.
    /// </summary>
    public static T Tree<T, TCombine>(T value) where T : unmanaged where TCombine : struct, ICombine<T>
    {
        var shared = SharedMemory.Allocate<T>(MaxGroupSize);
        int t = Group.IdxX;
        shared[t] = value;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s >>= 1)
        {
            if (t < s) shared[t] = default(TCombine).Combine(shared[t], shared[t + s]);
            Group.Barrier();
        }
        T total = shared[0];
        Group.Barrier();
        return total;
    }

    /// <summary>
    /// Exclusive prefix sum of <paramref name="value"/> in thread order (Hillis–Steele);
    /// <paramref name="total"/> receives the group-wide sum.
    /// </summary>
    public static int ExclusiveScan(int value, out int total)
    {
        var shared = SharedMemory.Allocate<int>(MaxGroupSize);
        int t = Group.IdxX;
        shared[t] = value;
        Group.Barrier();
        for (int offset = 1; offset < Group.DimX; offset <<= 1)
        {
            int add = t >= offset ? shared[t - offset] : 0;
            Group.Barrier();
            shared[t] += add;
            Group.Barrier();
        }
        int inclusive = shared[t];
        total = shared[Group.DimX - 1];
        Group.Barrier();
        return inclusive - value;
    }
}
