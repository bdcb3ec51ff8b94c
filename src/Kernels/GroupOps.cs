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
    public static double Sum(double value)
    {
        var shared = SharedMemory.Allocate<double>(MaxGroupSize);
        int t = Group.IdxX;
        shared[t] = value;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s >>= 1)
        {
            if (t < s) shared[t] += shared[t + s];
            Group.Barrier();
        }
        double total = shared[0];
        Group.Barrier();
        return total;
    }

    /// <summary>Σ of <paramref name="value"/> over the group, returned to every thread.</summary>
    public static int Sum(int value)
    {
        var shared = SharedMemory.Allocate<int>(MaxGroupSize);
        int t = Group.IdxX;
        shared[t] = value;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s >>= 1)
        {
            if (t < s) shared[t] += shared[t + s];
            Group.Barrier();
        }
        int total = shared[0];
        Group.Barrier();
        return total;
    }

    /// <summary>Maximum of <paramref name="value"/> over the group, returned to every thread.</summary>
    public static uint Max(uint value)
    {
        var shared = SharedMemory.Allocate<uint>(MaxGroupSize);
        int t = Group.IdxX;
        shared[t] = value;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s >>= 1)
        {
            if (t < s && shared[t + s] > shared[t]) shared[t] = shared[t + s];
            Group.Barrier();
        }
        uint max = shared[0];
        Group.Barrier();
        return max;
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
