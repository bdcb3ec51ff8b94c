using TaskMerge.Engine.Methods;

namespace TaskMerge.Engine.Tests.Methods;

public class ArceeFusionTests
{
    /// <summary>
    /// mergekit's ArceeFusionMergeTask in float64 (without its sampling above 1e6 entries): importance =
    /// |b − a|·Σ_row p·log(p/q), p/q = softmax rows + 1e-8; sorted importances; median, q1, q3 at index
    /// int(q·(n − 1)); threshold = median + 1.5·(q3 − q1); a + (b − a)·[importance ≥ threshold].
    /// </summary>
    internal static double[] Reference(float[] a, float[] b, int row)
    {
        int n = a.Length;
        var importance = new double[n];
        for (int o = 0; o < n; o += row)
        {
            double[] Softmax(float[] v)
            {
                double max = v.Skip(o).Take(row).Max(x => (double)x);
                var e = v.Skip(o).Take(row).Select(x => Math.Exp(x - max)).ToArray();
                double s = e.Sum();
                return e.Select(x => x / s + 1e-8).ToArray();
            }
            var p = Softmax(b);
            var q = Softmax(a);
            double kl = p.Select((x, j) => x * Math.Log(x / q[j])).Sum();
            for (int j = 0; j < row; j++) importance[o + j] = Math.Abs((double)b[o + j] - a[o + j]) * kl;
        }
        var sorted = importance.Order().ToArray();
        double Q(double f) => sorted[(int)(f * (n - 1))];
        double threshold = Q(0.5) + 1.5 * (Q(0.75) - Q(0.25));
        return a.Select((x, i) => importance[i] >= threshold ? (double)b[i] : x).ToArray();
    }

    [Theory]
    [InlineData(new[] { 40, 25 }, 1)]
    [InlineData(new[] { 333 }, 2)]
    [InlineData(new[] { 4, 6, 9 }, 3)]
    public void Arcee_fusion_matches_float64_mergekit_formula(int[] shape, int seed)
    {
        int n = shape.Aggregate(1, (x, y) => x * y);
        var r = new Random(seed);
        var a = Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        var b = a.Select(x => x + (float)((r.NextDouble() - 0.5) * (r.NextDouble() < 0.1 ? 2 : 0.1))).ToArray();
        var (merged, diag) = MethodParityTests.RunMethod(new ArceeFusionMethod(), a, [b], new(), [new()], shape: shape);
        var expected = Reference(a, b, shape[^1]);
        var got = merged.ToArray();
        int taken = 0;
        for (int i = 0; i < n; i++)
        {
            Assert.True(got[i] == (float)expected[i], $"element {i}: expected {expected[i]:R}, got {got[i]:R}");
            if (got[i] == b[i] && a[i] != b[i]) taken++;
        }
        Assert.InRange(taken, 1, n / 2);
        Assert.Equal(taken / (double)n, (double)diag["arcee_fusion_kept_fraction"], 9);
    }

    [Fact]
    public void Identical_models_give_the_base()
    {
        float[] a = [0.1f, -0.3f, 0.7f, 0.2f];
        var (merged, _) = MethodParityTests.RunMethod(new ArceeFusionMethod(), a, [(float[])a.Clone()], new(), [new()]);
        Assert.Equal(a, merged.ToArray());
    }
}
