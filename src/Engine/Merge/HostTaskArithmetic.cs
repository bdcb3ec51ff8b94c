using System.Buffers;
using System.Numerics.Tensors;
using Tensor = TaskMerge.Engine.Tensors.Tensor;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;

namespace TaskMerge.Engine.Merge;

/// <summary>
/// <see cref="TaskArithmeticCore.Merge"/> streamed through host memory for one tensor on the CPU backend: the
/// merge pipeline's form of the task-arithmetic family when tensors already live in host memory. Every input is
/// decoded straight from its mapped file in chunks of <see cref="CpuBackend"/>'s chunk size, both cores take
/// chunks of the same tensor, and the result is encoded into output bytes in the same pass.
/// <list type="bullet">
/// <item>An expert that is sparsified has its task vector τ = θ − θ₀ decoded once into one float32 array, which
/// the backend's own sparsification (<see cref="TaskArithmeticCore.Sparsify"/>: top-k, Bernoulli, bands, ranked
/// Bernoulli, L1 rescale) then works on; every other expert is never held whole.</item>
/// <item>One fused pass per chunk then weights the task vectors, mixes them (sign election and disjoint sum, or a
/// plain sum), normalises, scales by λ, adds θ₀ and encodes to the output dtype.</item>
/// </list>
/// Per element these are the same float32 operations in the same order as the tensor-op form followed by the
/// writer's encoding, so the bytes are identical (tested against it for every method of the family).
/// </summary>
internal static class HostTaskArithmetic
{
    [ThreadStatic] private static float[][]? _scratch;

    /// <summary>True when <paramref name="plan"/>'s tensors are merged here on <paramref name="backend"/>.</summary>
    public static bool Applies(MergePlan plan, IBackend backend) =>
        backend is CpuBackend && plan.HasBase && plan.Method is ITaskArithmeticConfiguration;

    /// <summary>Merges tensor <paramref name="t"/>; returns its output bytes in a pooled array (the caller returns it to <see cref="ArrayPool{T}.Shared"/>).</summary>
    public static (byte[] Bytes, int Length) Merge(MergePlan plan, PlannedTensor t, CpuBackend cpu, ulong seed,
        Action<ModelSource, string, long, Span<float>> read)
    {
        var family = (ITaskArithmeticConfiguration)plan.Method;
        var reference = plan.Reference;
        int n = checked((int)t.Shape.Aggregate(1L, (a, d) => a * d));
        var order = t.Experts.Concat(t.Missing).Order().ToArray();
        var sources = order.Select(e => t.Missing.Contains(e) ? reference : plan.Experts[e]).ToArray();
        int k = order.Length;
        var g = new TensorGroup
        {
            Name = t.Name, Depth = t.Depth, Base = null, Experts = [], Backend = cpu,
            Parameters = plan.Parameters, Seed = seed, Diagnostics = new Dictionary<string, object>(),
        };
        bool rescale = g.Bool("rescale"), normalize = g.Bool("normalize");
        float lambda = (float)g.Float("lambda");
        var weights = new float[k];
        var densities = new double[k];
        for (int i = 0; i < k; i++)
        {
            weights[i] = (float)g.Float("weight", order[i]);
            densities[i] = g.Float("density", order[i]);
        }
        float divisor = 0f;
        foreach (float w in weights) divisor += w;
        if (Math.Abs(divisor) < 1e-8f) divisor = 1f;

        var taskVectors = new Tensor?[k];
        int size = t.OutDType.Size();
        var bytes = ArrayPool<byte>.Shared.Rent(n * size);
        try
        {
            bool anyHeld = false;
            for (int i = 0; i < k; i++)
                if (family.Sparsification != Sparsification.None && densities[i] < 1)
                {
                    taskVectors[i] = cpu.Empty(t.Shape);
                    anyHeld = true;
                }
            if (anyHeld)
                cpu.ForChunks(n, (o, len) =>
                {
                    var s = Scratch(k);
                    var b = s[k].AsSpan(0, len);
                    read(reference, t.Name, o, b);
                    for (int i = 0; i < k; i++)
                    {
                        if (taskVectors[i] is not { } tv) continue;
                        var into = CpuBackend.Span(tv).Slice(o, len);
                        read(sources[i], t.Name, o, into);
                        TensorPrimitives.Subtract(into, b, into);
                    }
                });
            for (int i = 0; i < k; i++)
                if (taskVectors[i] is { } tv)
                    TaskArithmeticCore.Sparsify(g, tv, densities[i], family.Sparsification, rescale, order[i]);

            cpu.ForChunks(n, (o, len) =>
            {
                var s = Scratch(k);
                var b = s[k].AsSpan(0, len);
                var mixed = s[k + 1].AsSpan(0, len);
                read(reference, t.Name, o, b);
                for (int i = 0; i < k; i++)
                {
                    var tv = s[i].AsSpan(0, len);
                    if (taskVectors[i] is { } held) CpuBackend.Span(held).Slice(o, len).CopyTo(tv);
                    else
                    {
                        read(sources[i], t.Name, o, tv);
                        TensorPrimitives.Subtract(tv, b, tv);
                    }
                    if (weights[i] != 1f) TensorPrimitives.Multiply(tv, weights[i], tv);
                }
                if (family.Consensus)
                {
                    var d = s[k + 2].AsSpan(0, len);
                    CpuKernels.SignConsensus(s[..k], weights, 0, len, s[k + 1], s[k + 2]);
                    if (normalize) TensorPrimitives.Divide(mixed, d, mixed);
                }
                else
                {
                    mixed.Clear();
                    for (int i = 0; i < k; i++) TensorPrimitives.Add(mixed, s[i].AsSpan(0, len), mixed);
                    if (normalize) TensorPrimitives.Multiply(mixed, 1f / divisor, mixed);
                }
                if (lambda != 1f) TensorPrimitives.Multiply(mixed, lambda, mixed);
                TensorPrimitives.Add(b, mixed, mixed);
                FloatConvert.FromFloat(t.OutDType, mixed, bytes.AsSpan(o * size, len * size));
            });
            return (bytes, n * size);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(bytes);
            throw;
        }
        finally
        {
            foreach (var tv in taskVectors) tv?.Dispose();
        }
    }

    /// <summary>This thread's chunk buffers: one per expert, then the base, the mix and the divisor.</summary>
    private static float[][] Scratch(int experts)
    {
        if (_scratch is { } s && s.Length >= experts + 3) return s;
        _scratch = new float[experts + 3][];
        for (int i = 0; i < _scratch.Length; i++) _scratch[i] = new float[CpuBackend.Chunk];
        return _scratch;
    }
}
