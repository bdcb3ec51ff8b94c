using TaskMerge.Engine.Tensors;
using Xunit;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// Runs an op on a device backend and on the CPU backend from the same inputs and compares the
/// results. Shared by the ILGPU-CPU-accelerator tests (tiny sizes) and the CUDA tests (real sizes).
/// </summary>
internal static class BackendParity
{
    /// <summary>Values in (−scale, scale) with a sprinkling of exact zeros and repeats.</summary>
    public static float[] RandomValues(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++)
        {
            int kind = rng.Next(20);
            v[i] = kind == 0 ? 0f : kind == 1 && i > 0 ? v[rng.Next(i)] : (float)((rng.NextDouble() * 2 - 1) * scale);
        }
        return v;
    }

    /// <summary>Values drawn from a small set of magnitudes with random signs: many exact ties.</summary>
    public static float[] TiedValues(int n, int seed, int distinct = 7)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (rng.Next(2) == 0 ? -1f : 1f) * (rng.Next(distinct) * 0.25f);
        return v;
    }

    public static Tensor Load(IBackend backend, float[] values, params int[] shape)
    {
        var t = backend.Empty(shape.Length == 0 ? [values.Length] : shape);
        backend.Upload(values, t);
        return t;
    }

    /// <summary>Runs <paramref name="op"/> on both backends with the given inputs; returns (cpu, device) copies of input <paramref name="resultIndex"/>.</summary>
    public static (float[] Cpu, float[] Device) Run(IBackend device, IBackend cpu, float[][] inputs, int[][] shapes,
        Action<IBackend, Tensor[]> op, int resultIndex)
    {
        float[] RunOn(IBackend b)
        {
            var tensors = inputs.Select((v, i) => Load(b, v, shapes[i])).ToArray();
            try
            {
                op(b, tensors);
                return tensors[resultIndex].ToArray();
            }
            finally
            {
                foreach (var t in tensors) t.Dispose();
            }
        }
        return (RunOn(cpu), RunOn(device));
    }

    /// <summary>Same-length 1-D inputs.</summary>
    public static (float[] Cpu, float[] Device) Run(IBackend device, IBackend cpu, float[][] inputs,
        Action<IBackend, Tensor[]> op, int resultIndex) =>
        Run(device, cpu, inputs, inputs.Select(v => new[] { v.Length }).ToArray(), op, resultIndex);

    /// <summary>Equal bit patterns element by element (any NaN matches any NaN: payloads differ across devices).</summary>
    public static void AssertBitEqual(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            bool same = BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i])
                || (float.IsNaN(expected[i]) && float.IsNaN(actual[i]));
            if (!same)
                Assert.Fail($"{what}: element {i} of {expected.Length}: cpu {expected[i]:R}, device {actual[i]:R}");
        }
    }

    /// <summary>|e − a| ≤ tolerance·max(|e|, floor) element by element.</summary>
    public static void AssertClose(float[] expected, float[] actual, double tolerance, string what, double floor = 1.0)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (Math.Abs(e - a) > tolerance * Math.Max(Math.Abs(e), floor))
                Assert.Fail($"{what}: element {i} of {expected.Length}: cpu {e:R}, device {a:R}, tolerance {tolerance}");
        }
    }

    /// <summary>|e − a| ≤ tolerance·scale, where scale bounds the terms of the reduction.</summary>
    public static void AssertReduction(double expected, double actual, double tolerance, double scale, string what)
    {
        if (Math.Abs(expected - actual) > tolerance * Math.Max(scale, double.Epsilon))
            Assert.Fail($"{what}: cpu {expected:R}, device {actual:R}, tolerance {tolerance}·{scale:R}");
    }

    /// <summary>Every reduction of <paramref name="x"/> (and of x·y for Dot) on both backends.</summary>
    public static void AssertReductions(IBackend device, IBackend cpu, float[] x, float[] y, double tolerance)
    {
        using var cx = Load(cpu, x);
        using var cy = Load(cpu, y);
        using var dx = Load(device, x);
        using var dy = Load(device, y);
        double sumAbs = cpu.SumAbs(cx), sumSq = cpu.SumSquares(cx);
        double dotScale = x.Zip(y, (a, b) => Math.Abs((double)a * b)).Sum();
        AssertReduction(cpu.Sum(cx), device.Sum(dx), tolerance, sumAbs, "Sum");
        AssertReduction(sumAbs, device.SumAbs(dx), tolerance, sumAbs, "SumAbs");
        AssertReduction(sumSq, device.SumSquares(dx), tolerance, sumSq, "SumSquares");
        AssertReduction(cpu.Dot(cx, cy), device.Dot(dx, dy), tolerance, dotScale, "Dot");
        Assert.Equal(BitConverter.SingleToInt32Bits(cpu.MaxAbs(cx)), BitConverter.SingleToInt32Bits(device.MaxAbs(dx)));
    }

    /// <summary>KeepTopKMagnitude on both backends; results must be bit-identical (same survivors, ties by lowest index).</summary>
    public static void AssertTopK(IBackend device, IBackend cpu, float[] x, long k)
    {
        var (expected, actual) = Run(device, cpu, [x], (b, t) => b.KeepTopKMagnitude(t[0], k), 0);
        AssertBitEqual(expected, actual, $"top-{k} of {x.Length}");
    }

    /// <summary>SignConsensus over <paramref name="experts"/> on both backends; mixed and divisor must be bit-identical.</summary>
    public static void AssertSignConsensus(IBackend device, IBackend cpu, float[][] experts, float[] weights)
    {
        int n = experts.Length > 0 ? experts[0].Length : 37;
        (float[] Mixed, float[] Divisor) RunOn(IBackend b)
        {
            var weighted = experts.Select(e => Load(b, e)).ToList();
            using var mixed = b.Empty(n);
            using var divisor = b.Empty(n);
            b.SignConsensus(weighted, weights, mixed, divisor);
            foreach (var w in weighted) w.Dispose();
            return (mixed.ToArray(), divisor.ToArray());
        }
        var c = RunOn(cpu);
        var d = RunOn(device);
        AssertBitEqual(c.Mixed, d.Mixed, $"mixed, K={experts.Length}");
        AssertBitEqual(c.Divisor, d.Divisor, $"divisor, K={experts.Length}");
    }

    /// <summary>C ← alpha·op(A)·op(B) + beta·C for op(A) m×k, op(B) k×n, on both backends.</summary>
    public static void AssertGemm(IBackend device, IBackend cpu, int m, int n, int k, bool transA, bool transB,
        float alpha, float beta, double tolerance, int seed)
    {
        int[] aShape = transA ? [k, m] : [m, k], bShape = transB ? [n, k] : [k, n];
        float[] a = RandomValues(m * k, seed), b = RandomValues(k * n, seed + 1), c = RandomValues(m * n, seed + 2);
        var (expected, actual) = Run(device, cpu, [a, b, c], [aShape, bShape, [m, n]],
            (be, t) => be.Gemm(t[0], transA, t[1], transB, t[2], alpha, beta), 2);
        AssertClose(expected, actual, tolerance, $"gemm {m}x{n}x{k} tA={transA} tB={transB} alpha={alpha} beta={beta}", MaxAbs(expected));
    }

    /// <summary>C ← alpha·op(A)·op(A)ᵀ + beta·C on both backends.</summary>
    public static void AssertSyrk(IBackend device, IBackend cpu, int n, int k, bool transA, float alpha, float beta, double tolerance, int seed)
    {
        int[] aShape = transA ? [k, n] : [n, k];
        float[] a = RandomValues(n * k, seed), c = RandomValues(n * n, seed + 1);
        var (expected, actual) = Run(device, cpu, [a, c], [aShape, [n, n]], (be, t) => be.Syrk(t[0], transA, t[1], alpha, beta), 1);
        AssertClose(expected, actual, tolerance, $"syrk n={n} k={k} tA={transA} beta={beta}", MaxAbs(expected));
    }

    /// <summary>y ← alpha·op(A)·x + beta·y on both backends.</summary>
    public static void AssertGemv(IBackend device, IBackend cpu, int rows, int cols, bool transA, float alpha, float beta, double tolerance, int seed)
    {
        int xLength = transA ? rows : cols, yLength = transA ? cols : rows;
        float[] a = RandomValues(rows * cols, seed), x = RandomValues(xLength, seed + 1), y = RandomValues(yLength, seed + 2);
        var (expected, actual) = Run(device, cpu, [a, x, y], [[rows, cols], [xLength], [yLength]],
            (be, t) => be.Gemv(t[0], transA, t[1], t[2], alpha, beta), 2);
        AssertClose(expected, actual, tolerance, $"gemv {rows}x{cols} tA={transA} beta={beta}", MaxAbs(expected));
    }

    public static float MaxAbs(float[] v) => v.Length == 0 ? 0f : v.Max(MathF.Abs);
}
